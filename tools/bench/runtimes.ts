/**
 * The isolation tiers measured side by side: for each OCI runtime (runc, then runsc = gVisor) a worker of 32
 * slots is started cold, then `echo hi` is timed one call at a time on one slot (p50, p99) and in 32-wide
 * batches, 2 in flight (calls/s). Written under `runtimes` in results.json.
 *
 * On its own: `npx tsx tools/bench/runtimes.ts [--iterations N] [--out FILE]` (merges into the results file).
 */
import { Redis } from 'ioredis';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { SlotBackend, SlotWorker, createLogger, type Slot } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import type { ThroughputRun } from './baseline.js';
import { e2eBatches, e2eSerial, type FailureLog } from './e2e.js';
import { leftovers, waitForContainers } from './environment.js';
import { round, summarize, type LatencySummary } from './stats.js';

export interface RuntimeRun {
  runtime: string;
  /** worker.start() of `slots` slots, containers created and executors ready. */
  coldStartMs: number;
  /** One call at a time on one slot, end to end. */
  serial: LatencySummary;
  /** Time inside the slot (metadata.durationMs) of the same calls. */
  inSlot: LatencySummary;
  /** Best of the batch runs. */
  callsPerS: number;
  batchRuns: ThroughputRun[];
  failures: number;
  firstFailure?: string;
}

export interface RuntimesResults {
  image: string;
  slots: number;
  iterations: number;
  command: string;
  runs: RuntimeRun[];
  /** runsc against runc: serial p50 and calls/s ratios, cold start difference. */
  gvisorVsRunc?: { p50Ratio: number; callsPerSRatio: number; coldStartExtraMs: number };
}

const COMMAND = 'echo hi';
const progress = (msg: string): void => void process.stderr.write(`[bench runtimes] ${msg}\n`);

export interface RuntimesOptions {
  redisUrl: string;
  image?: string;
  slots?: number;
  iterations?: number;
  runtimes?: string[];
  logger?: Logger;
}

/** Measures every runtime in turn on the same machine, image and command. */
export async function measureRuntimes(o: RuntimesOptions): Promise<RuntimesResults> {
  const image = o.image ?? 'slotq-sandbox:latest';
  const slots = o.slots ?? 32;
  const iterations = o.iterations ?? 300;
  const runs: RuntimeRun[] = [];
  for (const runtime of o.runtimes ?? ['runc', 'runsc']) runs.push(await measureOne(o.redisUrl, runtime, image, slots, iterations, o.logger ?? createLogger({ level: 'silent' })));
  const [runc, runsc] = [runs.find((r) => r.runtime === 'runc'), runs.find((r) => r.runtime === 'runsc')];
  const gvisorVsRunc = runc && runsc
    ? { p50Ratio: round(runsc.serial.p50Ms / runc.serial.p50Ms, 2), callsPerSRatio: round(runsc.callsPerS / runc.callsPerS, 2), coldStartExtraMs: round(runsc.coldStartMs - runc.coldStartMs, 0) }
    : undefined;
  return { image, slots, iterations, command: COMMAND, runs, ...(gvisorVsRunc ? { gvisorVsRunc } : {}) };
}

async function measureOne(redisUrl: string, runtime: string, image: string, slots: number, iterations: number, log: Logger): Promise<RuntimeRun> {
  const prefix = `bench-rt-${randomId(5)}`;
  const worker = new SlotWorker({ redisUrl, prefix, image, runtime, slots, warmSpares: 0, logger: log });
  const backend = new SlotBackend({ redisUrl, prefix, logger: log });
  const redis = new Redis(redisUrl, { connectionName: 'slotq-bench-runtimes' });
  progress(`${runtime}: cold start of ${slots} slots`);
  const t0 = performance.now();
  try {
    await worker.start();
    const coldStartMs = performance.now() - t0;
    await waitForContainers(prefix, slots, 30_000);
    await backend.start();
    const held: Slot[] = [];
    for (let i = 0; i < slots; i++) held.push(await backend.acquire(`rt-${i}`, { timeoutMs: 10_000 }));
    const failures: FailureLog = { count: 0, inSlotMs: [] };
    progress(`${runtime}: ${iterations} calls one at a time`);
    const serial = await e2eSerial(backend, held[0]!, COMMAND, iterations, 20, failures);
    const inSlot = summarize(failures.inSlotMs!.slice(20));
    delete failures.inSlotMs;
    progress(`${runtime}: 32-wide batches, 2 in flight`);
    await e2eBatches(backend, held, COMMAND, 3, 2, failures);
    const batchRuns = [await e2eBatches(backend, held, COMMAND, Math.max(10, Math.round(iterations / 15)), 2, failures)];
    for (const s of held) await backend.release(s).catch(() => undefined);
    const best = batchRuns.reduce((a, r) => (r.callsPerS > a.callsPerS ? r : a));
    return {
      runtime, coldStartMs: round(coldStartMs, 0), serial: summarize(serial.samplesMs), inSlot, callsPerS: best.callsPerS, batchRuns,
      failures: failures.count, ...(failures.first ? { firstFailure: failures.first } : {}),
    };
  } finally {
    await backend.stop({ purge: true }).catch(() => undefined);
    await worker.stop();
    const left = await leftovers(redis, prefix);
    redis.disconnect();
    if (left.leakedContainers) progress(`${runtime}: ${left.leakedContainers} containers left behind`);
  }
}

/** One line per runtime, for the console. */
export function renderRuntimes(r: RuntimesResults): string {
  const rows = r.runs.map((x) => `${x.runtime.padEnd(6)} cold ${String(x.coldStartMs).padStart(6)} ms  p50 ${x.serial.p50Ms.toFixed(2).padStart(7)} ms  p99 ${x.serial.p99Ms.toFixed(2).padStart(7)} ms  in-slot p50 ${x.inSlot.p50Ms.toFixed(2).padStart(6)} ms  ${String(x.callsPerS).padStart(7)} calls/s  failures ${x.failures}`);
  return [`runtimes (${r.slots} slots, ${r.image}, \`${r.command}\`):`, ...rows].join('\n');
}

async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const out = arg('--out') ?? 'tools/bench/results.json';
  const results = await measureRuntimes({ redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', iterations: Number(arg('--iterations') ?? 300), ...(process.env['SLOTQ_IMAGE'] ? { image: process.env['SLOTQ_IMAGE'] } : {}) });
  const existing = JSON.parse(await readFile(out, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  await writeFile(out, `${JSON.stringify({ ...existing, runtimes: { timestamp: new Date().toISOString(), ...results } }, null, 2)}\n`);
  console.log(renderRuntimes(results));
  progress(`wrote runtimes into ${out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(`bench runtimes: ${String(err)}`);
    process.exit(1);
  });
}
