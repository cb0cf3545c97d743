import { Redis } from 'ioredis';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { SlotBackend, SlotWorker, createLogger, type Slot } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import { redactUrl } from '../../src/shared/redis.js';
import type { ContainerDriver } from '../../src/worker/engine/container-driver.js';
import { driver } from '../testkit/docker.js';
import { baselineConcurrent, baselineSerial, type ThroughputRun } from './baseline.js';
import { countRedisCommands, e2eBatches, e2eSerial, type E2eSerial, type FailureLog } from './e2e.js';
import { checkTargets, renderTable, type TargetCheck } from './report.js';
import { harnessExecVsBash, type HarnessExecRun } from './harness-exec.js';
import { leftovers, machineInfo, waitForContainers, type MachineInfo } from './environment.js';
import { BIG_OUTPUT_BYTES, bigOutput, type BigOutput } from './memory.js';
import { measurePythonClient, renderPythonTable, type PythonClientResults } from './python-client.js';
import { round, summarize, type LatencySummary } from './stats.js';

export interface BenchOptions {
  redisUrl?: string;
  image?: string;
  /** Calls measured one at a time, for slotq and for the baseline (default 500). */
  iterations?: number;
  /** Slots of the worker, batch width and baseline concurrency (default 32). */
  slots?: number;
  /** Where results.json goes (default tools/bench/results.json). */
  out?: string;
  logger?: Logger;
}

export interface BenchResults {
  timestamp: string;
  machine: MachineInfo;
  config: {
    image: string; slots: number; iterations: number; warmup: number; batches: number; batchWarmup: number;
    inFlight: number[]; baselineWarmup: number; baselineCallsPerLane: number; command: string; prefix: string; redisUrl: string;
  };
  coldStart32SlotsMs: number;
  e2e: LatencySummary & { callsPerS: number; batchRuns: ThroughputRun[]; failures: number; firstFailure?: string };
  baseline: LatencySummary & { callsPerS: number; concurrent: ThroughputRun; failures: number };
  ratios: { latencyP50: number; throughput: number };
  queueOverheadP50Ms: number;
  queueOverhead: LatencySummary;
  redisCommandsPerCall: number;
  redisCommandsInBatches: number;
  /** A 300 MB output streamed through one call: the RSS it cost (the worker runs in this process). */
  bigOutput: BigOutput;
  /** The harness's exec against the bash tool, one call at a time, alternating (harness-exec.ts). */
  harnessExec: HarnessExecRun;
  targets: TargetCheck[];
  /** The same runs through `slotq gateway` and the Python client (python-client.ts). */
  python: PythonClientResults;
  cleanup: { leakedContainers: number; leftoverRedisKeys: number };
  samples: { e2eMs: number[]; baselineMs: number[] };
}

/** Where results.json goes by default (next to the bench's README; not part of the package). */
export const DEFAULT_RESULTS_FILE = 'tools/bench/results.json';
const COMMAND = 'echo hi';
const WARMUP = 50;
const BATCH_WARMUP = 5;
const IN_FLIGHT = [1, 2, 4];
const BASELINE_WARMUP = 10;
const BASELINE_CALLS_PER_LANE = 5;

type Config = BenchResults['config'];
interface SlotqPhase { serial: E2eSerial; runs: ThroughputRun[]; commands: number; calls: number; failures: FailureLog; big: BigOutput; harnessExec: HarnessExecRun }
interface BaselinePhase { serial: Awaited<ReturnType<typeof baselineSerial>>; concurrent: ThroughputRun }

const progress = (msg: string): void => void process.stderr.write(`[bench] ${msg}\n`);

/**
 * Measures slotq end to end against plain `docker exec` on the same machine, image and commands;
 * writes results.json, prints a table, and leaves no container or key behind.
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchResults> {
  const iterations = opts.iterations ?? 500;
  const redisUrl = opts.redisUrl ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const config: Config = {
    image: opts.image ?? process.env['SLOTQ_IMAGE'] ?? 'slotq-sandbox:latest', slots: opts.slots ?? 32, iterations, warmup: WARMUP,
    batches: Math.max(10, Math.round(iterations / 5)), batchWarmup: BATCH_WARMUP, inFlight: IN_FLIGHT, baselineWarmup: BASELINE_WARMUP,
    baselineCallsPerLane: BASELINE_CALLS_PER_LANE, command: COMMAND, prefix: `bench-${randomId(6)}`, redisUrl: redactUrl(redisUrl),
  };
  const log = opts.logger ?? createLogger({ level: 'silent' });
  const docker = driver();
  const redis = new Redis(redisUrl, { connectionName: 'slotq-bench' });
  let worker: SlotWorker | undefined;
  let partial: Omit<BenchResults, 'cleanup' | 'python'>;
  let python: PythonClientResults = { ok: false, error: 'not run' };
  let cleanup: BenchResults['cleanup'];
  try {
    progress(`cold start: ${config.slots} slots (prefix ${config.prefix})`);
    worker = new SlotWorker({ redisUrl, prefix: config.prefix, image: config.image, slots: config.slots, logger: log });
    const t0 = performance.now();
    await worker.start();
    const coldStartMs = performance.now() - t0;
    await waitForContainers(config.prefix, config.slots + worker.config.warmSpares, 30_000);
    const slotq = await measureSlotq(redisUrl, redis, config, log);
    const baseline = await measureBaseline(docker, [...worker.slots.values()].map((s) => s.containerId), config);
    partial = assemble(config, coldStartMs, slotq, baseline, await machineInfo(redis));
    progress(`python client: the same runs through slotq gateway`);
    python = await measurePythonClient({ ...config, redisUrl, logger: log, ts: partial.e2e });
  } finally {
    await worker?.stop();
    cleanup = await leftovers(redis, config.prefix);
    redis.disconnect();
  }
  const results: BenchResults = { ...partial, python, cleanup };
  const out = opts.out ?? DEFAULT_RESULTS_FILE;
  await mkdir(dirname(out), { recursive: true });
  // The scale curve (`npm run bench -- --scale`) is a run of its own: its figures stay in the file.
  const scale = await readFile(out, 'utf8').then((t) => (JSON.parse(t) as Record<string, unknown>)['scale'], () => undefined);
  await writeFile(out, `${JSON.stringify(scale === undefined ? results : { ...results, scale }, null, 2)}\n`);
  console.log(renderTable(results));
  console.log(renderPythonTable(python, results.e2e, config.slots));
  progress(`wrote ${out}`);
  return results;
}

/** slotq end to end: one call at a time, then 32-wide batches with 1, 2, 4 in flight (Redis commands counted). */
async function measureSlotq(redisUrl: string, redis: Redis, c: Config, log: Logger): Promise<SlotqPhase> {
  const backend = new SlotBackend({ redisUrl, prefix: c.prefix, logger: log });
  await backend.start();
  const slots: Slot[] = [];
  try {
    for (let i = 0; i < c.slots; i++) slots.push(await backend.acquire(`bench-${i}`, { timeoutMs: 10_000 }));
    const failures: FailureLog = { count: 0 };
    progress(`slotq: ${c.iterations} calls one at a time on one slot (after ${c.warmup} warm-up)`);
    const serial = await e2eSerial(backend, slots[0]!, c.command, c.iterations, c.warmup, failures);
    progress(`slotq: ${c.batches} batches of ${c.slots} calls, ${c.inFlight.join('/')} batches in flight`);
    const { commands, value: runs } = await countRedisCommands(redis, async () => {
      const runs: ThroughputRun[] = [];
      for (const k of c.inFlight) {
        await e2eBatches(backend, slots, c.command, c.batchWarmup, k, failures);
        runs.push(await e2eBatches(backend, slots, c.command, c.batches, k, failures));
      }
      return runs;
    });
    const calls = c.inFlight.length * (c.batchWarmup + c.batches) * c.slots;
    progress(`slotq: one call printing ${BIG_OUTPUT_BYTES / 1e6} MB (memory of this process sampled)`);
    const big = await bigOutput(backend, slots[0]!);
    progress(`slotq: harness exec against the bash tool, ${c.iterations} of each, alternating`);
    const harnessExec = await harnessExecVsBash(backend, slots[1] ?? slots[0]!, c.command, c.iterations, c.warmup);
    return { serial, runs, commands, calls, failures, big, harnessExec };
  } finally {
    // Release without a reset: the worker is stopped next, so a reset would only churn containers.
    for (const s of slots) await backend.release(s).catch((err: unknown) => log.warn({ err, slotId: s.slotId }, 'bench: release failed'));
    await backend.stop({ purge: true });
  }
}

/** Plain dockerode exec on the worker's own slot containers: one at a time, then one lane per container. */
async function measureBaseline(docker: ContainerDriver, containerIds: string[], c: Config): Promise<BaselinePhase> {
  progress(`baseline: ${c.iterations} docker exec calls one at a time (after ${c.baselineWarmup} warm-up)`);
  const serial = await baselineSerial(docker, containerIds[0]!, c.command, c.iterations, c.baselineWarmup);
  progress(`baseline: ${containerIds.length} containers at once, ${c.baselineCallsPerLane} calls each`);
  await baselineConcurrent(docker, containerIds, c.command, 1); // warm-up
  const concurrent = await baselineConcurrent(docker, containerIds, c.command, c.baselineCallsPerLane);
  return { serial, concurrent };
}

function assemble(config: Config, coldStartMs: number, s: SlotqPhase, b: BaselinePhase, machine: MachineInfo): Omit<BenchResults, 'cleanup' | 'python'> {
  const best = s.runs.reduce((a, r) => (r.callsPerS > a.callsPerS ? r : a));
  const e2e = { ...summarize(s.serial.samplesMs), callsPerS: best.callsPerS, batchRuns: s.runs, failures: s.failures.count, ...(s.failures.first ? { firstFailure: s.failures.first } : {}) };
  const baseline = { ...summarize(b.serial.samplesMs), callsPerS: b.concurrent.callsPerS, concurrent: b.concurrent, failures: b.serial.failures + b.concurrent.failures };
  const ratios = { latencyP50: round(baseline.p50Ms / e2e.p50Ms, 2), throughput: round(e2e.callsPerS / baseline.callsPerS, 2) };
  const redisCommandsPerCall = round(s.commands / s.calls, 2);
  const queueOverhead = summarize(s.serial.overheadMs);
  return {
    timestamp: new Date().toISOString(), machine, config, coldStart32SlotsMs: round(coldStartMs, 1), e2e, baseline, ratios,
    queueOverheadP50Ms: queueOverhead.p50Ms, queueOverhead, redisCommandsPerCall, redisCommandsInBatches: s.commands, bigOutput: s.big, harnessExec: s.harnessExec,
    targets: checkTargets({ e2e, ratios, redisCommandsPerCall, bigOutput: s.big, coldStart32SlotsMs: round(coldStartMs, 1), harnessExec: s.harnessExec }),
    samples: { e2eMs: s.serial.samplesMs.map((x) => round(x)), baselineMs: b.serial.samplesMs.map((x) => round(x)) },
  };
}
