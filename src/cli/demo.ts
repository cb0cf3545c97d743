import { SingleBar, Presets } from 'cli-progress';
import Table from 'cli-table3';
import type { Logger } from 'pino';
import { SlotBackend } from '../producer/slot-backend.js';
import type { ExecutionResult, Slot } from '../shared/calls/schemas.js';
import { SlotWorker } from '../worker/slot-worker.js';
import { percentile } from './stats.js';

export interface DemoOptions {
  trajectories: number;
  slots: number;
  redisUrl?: string;
  prefix?: string;
  logger: Logger;
  progress: boolean;
}

export interface DemoSummary {
  trajectories: number;
  calls: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  wallMs: number;
}

type Step = { tool: string; args: Record<string, unknown>; expect: (r: ExecutionResult) => boolean };

/** The 8 tool calls of one agent trajectory, each with a check of its result. */
function steps(i: number): Step[] {
  const py = `import math\nvals = [math.factorial(k) % 97 for k in range(${i + 5})]\nprint("traj-${i}", sum(vals))\n`;
  const expected = `traj-${i} ${Array.from({ length: i + 5 }, (_, k) => factorial(k) % 97n).reduce((a, b) => a + b, 0n)}`;
  return [
    { tool: 'write_file', args: { path: 'src/main.py', content: py }, expect: (r) => r.success },
    { tool: 'bash', args: { command: 'python3 src/main.py > out.txt' }, expect: (r) => r.success },
    { tool: 'read_file', args: { path: 'out.txt' }, expect: (r) => r.output.trim() === expected },
    { tool: 'bash_stateful', args: { command: `cd /workspace/src && export TRAJ=${i}` }, expect: (r) => r.success },
    { tool: 'bash_stateful', args: { command: 'echo "$TRAJ" > ../traj.txt && pwd' }, expect: (r) => r.output.trim() === '/workspace/src' },
    { tool: 'bash', args: { command: 'cat traj.txt; ls src' }, expect: (r) => r.output === `${i}\nmain.py\n` },
    { tool: 'write_file', args: { path: 'notes/summary.md', content: `# trajectory ${i}\nresult: ${expected}\n` }, expect: (r) => r.success },
    {
      tool: 'bash',
      args: { command: 'git init -q . && git add -A && git -c user.email=agent@slotq -c user.name=agent commit -qm "trajectory" && git ls-files | wc -l' },
      expect: (r) => r.output.trim() === '4',
    },
  ];
}

function factorial(n: number): bigint {
  let f = 1n;
  for (let k = 2n; k <= BigInt(n); k++) f *= k;
  return f;
}

async function runTrajectory(backend: SlotBackend, i: number, latencies: number[], onCall: (ok: boolean) => void): Promise<number> {
  let failures = 0;
  const slot: Slot = await backend.acquire(`demo-${i}`, { timeoutMs: 180_000 });
  try {
    for (const step of steps(i)) {
      const t0 = performance.now();
      const [r] = await backend.executeBatch([[slot, step.tool, step.args]]);
      latencies.push(performance.now() - t0);
      const ok = r !== undefined && step.expect(r);
      if (!ok) {
        failures++;
        if (process.env["SLOTQ_DEMO_DEBUG"]) process.stderr.write(`step failed: ${step.tool} ${JSON.stringify(r)}\n`);
      }
      onCall(ok);
    }
  } finally {
    await backend.release(slot, { resetWorkspace: true });
  }
  return failures;
}

/** A realistic training-loop workload: N trajectories of 8 tool calls each, released with reset. */
export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const prefix = opts.prefix ?? `demo-${process.pid}`;
  const common = { prefix, logger: opts.logger, ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}) };
  const worker = new SlotWorker({ ...common, slots: opts.slots });
  const backend = new SlotBackend(common);
  const bar = opts.progress ? new SingleBar({ format: ' {bar} {value}/{total} calls | {failed} failed | {duration}s', hideCursor: true }, Presets.shades_classic) : undefined;
  const latencies: number[] = [];
  let failed = 0;
  const t0 = Date.now();
  try {
    process.stderr.write(`starting a worker with ${opts.slots} slots...\n`);
    await worker.start();
    await backend.start();
    bar?.start(opts.trajectories * 8, 0, { failed: 0 });
    const perTraj = await Promise.all(
      Array.from({ length: opts.trajectories }, (_, i) =>
        runTrajectory(backend, i, latencies, (ok) => {
          if (!ok) failed++;
          bar?.increment(1, { failed });
        }),
      ),
    );
    bar?.stop();
    const failures = perTraj.reduce((a, b) => a + b, 0);
    return { trajectories: opts.trajectories, calls: latencies.length, failures, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), wallMs: Date.now() - t0 };
  } finally {
    bar?.stop();
    await backend.stop({ purge: true });
    await worker.stop();
  }
}

export function summaryTable(s: DemoSummary): string {
  const t = new Table({ head: ['trajectories', 'calls', 'failures', 'p50 call (ms)', 'p99 call (ms)', 'wall (s)', 'calls/s'] });
  t.push([s.trajectories, s.calls, s.failures, s.p50Ms.toFixed(1), s.p99Ms.toFixed(1), (s.wallMs / 1000).toFixed(1), ((s.calls * 1000) / s.wallMs).toFixed(0)]);
  return t.toString();
}
