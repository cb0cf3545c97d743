import { statfs } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { ExecutionResult } from '../../src/shared/calls/schemas.js';
import { percentile } from '../../src/cli/stats.js';
import type { CallSpec } from './calls.js';
import { runScenario, type ChaosRow, type Scenario, type ScenarioOptions } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { echoCall, echoWhile, settledFlag, token, type LoopStats } from './workload.js';

export const ABUSE_MEMORY_MB = 256;
export const ABUSE_WORKSPACE_MB = 64;

interface Abuse {
  name: string;
  spec: CallSpec;
}

const brokenOnly = (r: ExecutionResult): boolean => r.metadata.code === 'SLOT_BROKEN';
const failedWith = (r: ExecutionResult, codes: string[]): boolean => !r.success && codes.includes(String(r.metadata.code));

/** The abusive calls, each with the failure it must end in. `hostPort` listens on the host's loopback only. */
export function abuses(hostPort: number): Abuse[] {
  const connect = (host: string): string => `python3 -c "import socket; socket.create_connection(('${host}', ${hostPort}), timeout=5)"`;
  return [
    // /bin/sh (dash) rejects `:` as a function name, so the classic bomb runs in bash; `sleep` keeps the call alive while it forks.
    { name: 'fork bomb', spec: { tool: 'bash', args: { command: `bash -c ':(){ :|:& };:; sleep 60'` }, timeoutS: 5, check: (r) => failedWith(r, ['TIMEOUT', 'TOOL_FAILED']) } },
    {
      name: 'memory hog',
      spec: { tool: 'bash', args: { command: `python3 -c "a = []\nwhile True: a.append(b'x' * 10**7)"` }, timeoutS: 60, check: (r) => failedWith(r, ['TOOL_FAILED']) && r.metadata.exitCode === 137 },
    },
    {
      name: 'disk filler',
      spec: { tool: 'bash', args: { command: 'dd if=/dev/zero of=/workspace/fill bs=1M count=5000' }, timeoutS: 60, check: (r) => failedWith(r, ['TOOL_FAILED']) && /No space left/.test(r.output) },
    },
    { name: 'network: 1.1.1.1:53', spec: { tool: 'bash', args: { command: `python3 -c "import socket; socket.create_connection(('1.1.1.1', 53), timeout=5)"` }, check: (r) => !r.success } },
    { name: 'network: host loopback port', spec: { tool: 'bash', args: { command: `${connect('127.0.0.1')} || ${connect('172.17.0.1')}` }, check: (r) => !r.success } },
    { name: 'network: DNS', spec: { tool: 'bash', args: { command: 'getent hosts example.com' }, check: (r) => !r.success } },
  ];
}

/** A TCP server on 127.0.0.1 that counts the connections it gets (none may come from a slot). */
export async function loopbackServer(): Promise<{ server: Server; port: number; connections: () => number }> {
  let n = 0;
  const server = createServer((sock) => (n++, sock.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, connections: () => n };
}

const latency = (xs: number[]): string => `p50 ${percentile(xs, 50).toFixed(1)} / p99 ${percentile(xs, 99).toFixed(1)} / max ${Math.max(0, ...xs).toFixed(1)} ms`;
const hostFreeMb = async (): Promise<number> => {
  const s = await statfs('/');
  return Math.round((s.bavail * s.bsize) / 2 ** 20);
};

/**
 * Abuse inside one slot stays inside it: a fork bomb, a memory hog, a disk filler and network attempts
 * each end in a clear failure, the abused slot works afterwards, and a neighbour slot's `echo` calls keep
 * succeeding throughout (their latency is reported).
 */
export function abuse(opts: ScenarioOptions): Promise<ChaosRow> {
  return runScenario('abuse: fork bomb, memory, disk, network', 'abuse', opts, async (s) => {
    await s.startWorker(2, { SLOTQ_MEMORY_MB: String(ABUSE_MEMORY_MB), SLOTQ_WORKSPACE_MB: String(ABUSE_WORKSPACE_MB) });
    const env = s.env(await s.backend());
    const abuser = new Trajectory(env, 'abuser');
    const neighbour = new Trajectory(env, 'neighbour');
    await abuser.ensureSlot();
    let left = 30;
    const baseline = await echoWhile(neighbour, () => left-- <= 0);
    s.notes.push(`neighbour echo, idle baseline: ${latency(baseline.latenciesMs)}`);
    const listener = await loopbackServer();
    const freeBeforeMb = await hostFreeMb();
    try {
      for (const a of abuses(listener.port)) await abuseOnce(s, abuser, neighbour, a);
    } finally {
      listener.server.close();
    }
    s.notes.push(`host: ${listener.connections()} connection(s) reached the loopback-only port; free disk ${freeBeforeMb} → ${await hostFreeMb()} MB`);
    if (listener.connections() > 0) s.rec.failed++;
    await abuser.release();
    await neighbour.release();
  });
}

/** What a result says, briefly: code, exit code and the telling line of its output or error. */
const gist = (r: ExecutionResult | undefined): string =>
  r ? `${r.metadata.code ?? 'ok'}, exit ${r.metadata.exitCode}: ${(/No space left[^\n]*|Killed|Resource temporarily unavailable|Errno \d+\] [^\n]*/.exec(r.output) ?? [r.error.slice(0, 120)])[0]}` : 'no result';

/**
 * One abusive call on the abuser's slot while the neighbour calls `echo`; then the abused slot must work.
 * Only SLOT_BROKEN (the container died and is replaced) is an acceptable retryable outcome.
 */
async function abuseOnce(s: Scenario, abuser: Trajectory, neighbour: Trajectory, a: Abuse): Promise<void> {
  let seen: ExecutionResult | undefined;
  const slot = await abuser.ensureSlot();
  const call = abuser.call({ ...a.spec, retryIf: brokenOnly, onResult: (r) => (seen = r) });
  const n: LoopStats = await echoWhile(neighbour, settledFlag(call));
  const outcome = await call;
  s.rec.watchRecovery(`after ${a.name}`, Date.now(), (x) => x.slotId === slot.slotId);
  s.notes.push(`${a.name}: ${outcome === 'failed' ? 'UNEXPECTED' : outcome} (${gist(seen)}); neighbour ${n.outcomes.ok}/${n.calls} ok, ${latency(n.latenciesMs)}`);
  // The abused slot works afterwards, or says it was broken and replaced (SLOT_BROKEN; then a fresh slot works).
  const after = await abuser.unit([{ ...echoCall(token('after')), retryIf: brokenOnly }]);
  if (outcome === 'failed' || after !== 'ok') await abuser.moveOn(); // a fresh container for the next abuse
}
