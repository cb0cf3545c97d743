import { execFileSync } from 'node:child_process';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { keysFor } from '../../src/shared/keys.js';
import { randomId } from '../../src/shared/ids.js';
import { driver } from '../../tools/testkit/docker.js';
import { startCliWorker, type CliWorker } from '../support/cli-worker.js';
import { containersOf, harness, redisUrl, waitFor, type Harness } from '../support/harness.js';

/**
 * "Retryable" means "never ran, and never will" (docs/tools-and-results.md "What to score and what to mask"). Every call
 * appends its marker to an append-only ledger in its slot before doing anything else; whatever happens to
 * the worker, no call answered `retryable: true` may appear in a ledger, and a call that may have run is
 * answered `outcome: unknown`, never "not run".
 */
const WORKER_LOST_MS = 4000;

let h: Harness | undefined;
let worker: CliWorker | undefined;
let dockerdPaused: number | undefined;
const signal = (pid: number | undefined, sig: NodeJS.Signals): void => {
  try {
    if (pid) process.kill(pid, sig);
  } catch {
    // gone already
  }
};

afterEach(async () => {
  signal(dockerdPaused, 'SIGCONT');
  dockerdPaused = undefined;
  signal(worker?.child.pid, 'SIGCONT');
  await worker?.stop('SIGTERM').catch(() => undefined);
  worker = undefined;
  await h?.close();
  h = undefined;
});

/** A call that writes its marker to the slot's ledger first, then sleeps. */
const mark = (slot: Slot, marker: string, sleepS = 0): [Slot, string, Record<string, unknown>] => [slot, 'bash', { command: `echo ${marker} >> /workspace/ledger; sleep ${sleepS}`, timeout: 60 }];

/** Every marker in the ledgers of the prefix's containers. */
async function ledgers(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of await containersOf(prefix)) {
    const r = await driver().exec(id, ['cat', '/workspace/ledger'], { timeoutMs: 10_000 }).catch(() => undefined);
    if (r) out.push(...r.stdout.toString().split('\n').filter(Boolean));
  }
  return out;
}

/** The contract, per call: a retryable answer never ran; one that may have run says so and is not retryable. */
function expectHonest(results: ReadonlyArray<readonly [string, ExecutionResult]>, ran: readonly string[]): void {
  for (const [marker, r] of results) {
    if (r.success) continue;
    expect(r.metadata.code, `${marker}: ${r.error}`).toBe('WORKER_LOST');
    if (r.metadata.retryable) {
      expect(ran, `${marker} was answered retryable (${r.error}) but ran`).not.toContain(marker);
      expect(r.metadata['outcome']).toBe('not_run');
    } else {
      expect(r.metadata['outcome'], `${marker}: ${r.error}`).toBe('unknown');
    }
  }
}

async function pausedWorker(pauseMs: number): Promise<void> {
  h = harness();
  worker = await startCliWorker({ redisUrl: redisUrl(), prefix: h.prefix, slots: 2, env: { SLOTQ_WORKER_LOST_MS: String(WORKER_LOST_MS), SLOTQ_WARM_SPARES: '0' } });
  const b: SlotBackend = await h.backend({ workerLostMs: WORKER_LOST_MS });
  const [a, c] = [await b.acquire('a'), await b.acquire('c')];
  const id = randomId(3);
  const m = (n: string): string => `${id}-${n}`;
  // In flight (a1), queued behind it on its slot (a2, a3), and on the other slot (c1, running).
  const first = b.executeBatch([mark(a, m('a1'), 2), mark(a, m('a2')), mark(a, m('a3')), mark(c, m('c1'), 2)]);
  await waitFor(async () => (await ledgers(h!.prefix)).filter((l) => l === m('a1') || l === m('c1')).length === 2, 30_000, 'a1 and c1 to start');
  process.kill(worker.child.pid!, 'SIGSTOP');
  const pausedAt = Date.now();
  // Added while the worker is paused: never fetched until it resumes.
  const second = b.executeBatch([mark(a, m('a4')), mark(c, m('c2'))]);
  await new Promise((r) => setTimeout(r, pauseMs - (Date.now() - pausedAt)));
  process.kill(worker.child.pid!, 'SIGCONT');
  const results = [...(await first).map((r, i) => [m(['a1', 'a2', 'a3', 'c1'][i]!), r] as const), ...(await second).map((r, i) => [m(['a4', 'c2'][i]!), r] as const)];
  // The resumed worker came back (a new incarnation) and has nothing of before left to run: no job waits
  // in its queue, and a call on each slot answered, behind anything still in the slots' FIFOs. (A job
  // whose lock expired during a long pause may stay listed active until BullMQ's stall check: it ran out.)
  const keys = keysFor(h.prefix);
  const queue = new Queue(keys.queueName(worker.workerId), { connection: h.redis(), prefix: keys.root });
  try {
    await waitFor(
      async () => (await queue.getJobCountByTypes('waiting', 'prioritized', 'delayed')) === 0 && (await b.executeBatch([a, c].map((s) => [s, 'bash', { command: 'echo ok' }]))).every((r) => r.success),
      30_000,
      'the resumed worker to serve again with nothing of before left',
    );
  } finally {
    await queue.close();
  }
  const ran = await ledgers(h.prefix);
  expectHonest(results, ran);
  if (pauseMs >= 2 * WORKER_LOST_MS) {
    // Declared lost: the calls in flight may have run, the queued ones never did and never will.
    const by = new Map(results);
    expect(by.get(m('a1'))!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' });
    for (const n of ['a2', 'a3', 'a4', 'c2']) expect(by.get(m(n))!.metadata, n).toMatchObject({ code: 'WORKER_LOST', retryable: true, outcome: 'not_run' });
  }
}

describe('fencing: a call answered retryable never ran, and never will', () => {
  it.each([3000, 8000, 30_000])('a worker paused (SIGSTOP) for %i ms with calls in flight and queued', async (pauseMs) => {
    await pausedWorker(pauseMs);
  }, 120_000);

  it('SIGTERM with an active job past the drain deadline: the call cut off is outcome unknown, the ones behind it never run', async () => {
    h = harness();
    worker = await startCliWorker({ redisUrl: redisUrl(), prefix: h.prefix, slots: 1, env: { SLOTQ_DRAIN_TIMEOUT_MS: '3000', SLOTQ_WARM_SPARES: '0' } });
    const b = await h.backend();
    const s = await b.acquire('t');
    const id = randomId(3);
    const m = (n: string): string => `${id}-${n}`;
    // t1 has ended and t2 runs when the worker is told to stop; t2 runs on past the drain deadline (it is
    // cut off); t3 waits behind it.
    const batch = b.executeBatch([mark(s, m('t1')), mark(s, m('t2'), 20), mark(s, m('t3'))]);
    await waitFor(async () => (await ledgers(h!.prefix)).includes(m('t2')), 30_000, 't2 to start');
    const exited = worker.stop('SIGTERM');
    // The container goes with the worker: keep every marker seen in its ledger while it exists.
    const seen = new Set<string>([m('t1'), m('t2')]);
    const prefix = h.prefix;
    const child = worker.child;
    const watch = waitFor(
      async () => {
        for (const marker of await ledgers(prefix)) seen.add(marker);
        return child.exitCode !== null || child.signalCode !== null;
      },
      60_000,
      'the worker to exit',
    );
    const results = await batch;
    await exited;
    await watch;
    const ran = [...seen];
    // t1 ended; its job did not: its answer is its result, or (the job was abandoned whole) outcome unknown.
    if (!results[0]!.success) expect(results[0]!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' });
    expect(results[1]!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' });
    expect(results[2]!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: true, outcome: 'not_run' });
    expectHonest(results.map((r, i) => [m(`t${i + 1}`), r] as const), ran);
  }, 120_000);

  it('dockerd paused for 15 s: calls over the FIFO channel keep answering, and no worker is declared lost', async () => {
    h = harness();
    const w = await h.worker({ slots: 2, warmSpares: 0, workerLostMs: WORKER_LOST_MS });
    const b = await h.backend({ workerLostMs: WORKER_LOST_MS });
    const slots = [await b.acquire('x'), await b.acquire('y')];
    const registry = new Registry(h.redis(), keysFor(h.prefix));
    const epoch = (await registry.workerInfo(w.workerId))['epoch'];
    expect(epoch).toBeTruthy();
    const pid = Number(execFileSync('pidof', ['dockerd']).toString().trim().split(' ')[0]);
    process.kill(pid, 'SIGSTOP');
    dockerdPaused = pid;
    const results: ExecutionResult[] = [];
    const until = Date.now() + 15_000;
    try {
      while (Date.now() < until) results.push(...(await b.executeBatch(slots.map((s) => [s, 'bash', { command: 'echo ok' }]))));
    } finally {
      process.kill(pid, 'SIGCONT');
      dockerdPaused = undefined;
    }
    expect(results.length).toBeGreaterThan(20);
    for (const r of results) expect(r, r.error).toMatchObject({ success: true, output: 'ok\n' });
    // The same incarnation throughout: it was never declared lost, never re-registered.
    expect((await registry.workerInfo(w.workerId))['epoch']).toBe(epoch);
  }, 120_000);
});
