import type { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { SlotBackend, SlotWorker, type Slot } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import type { ThroughputRun } from './baseline.js';
import { e2eBatches, e2eSerial, type FailureLog } from './e2e.js';
import { leftovers } from './environment.js';
import { round, summarize } from './stats.js';

/** One point of the scale curve: a worker (or several) with `slots` slots in all. */
export interface ScalePoint {
  workers: number;
  slots: number;
  coldStartMs: number;
  callsPerS: number;
  /** One call at a time on one slot while the others idle. */
  p50Ms: number;
  p99Ms: number;
  /** Host memory (MemAvailable drop) the started worker(s) cost, per slot: containers, shims, sessions. */
  hostMemPerSlotMb: number;
  /** RSS of this process (worker(s) and producer) with every slot up and after the throughput run. */
  workerRssMb: number;
  failures: number;
}

export interface ScaleResults {
  timestamp: string;
  channel: string;
  command: string;
  /** Slot counts asked for and the ones run (capped when the host lacks memory for them). */
  requested: number[];
  capped?: string;
  points: ScalePoint[];
}

const COMMAND = 'echo hi';
const SERIAL_CALLS = 300;
const THROUGHPUT_S = 6;

const progress = (msg: string): void => void process.stderr.write(`[bench:scale] ${msg}\n`);

/** MemAvailable of the host (kB → MB), from /proc/meminfo. */
export function availableMemMb(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Batches of one call per slot, as many in flight as keep the CPU busy, for about THROUGHPUT_S seconds. */
async function throughput(backend: SlotBackend, slots: Slot[], log: FailureLog): Promise<ThroughputRun> {
  const perBatchGuessMs = Math.max(20, slots.length * 0.8);
  const batches = Math.max(4, Math.round((THROUGHPUT_S * 1000) / perBatchGuessMs));
  await e2eBatches(backend, slots, COMMAND, 2, 2, log); // warm-up
  return e2eBatches(backend, slots, COMMAND, batches, 2, log);
}

/** Starts `workers` workers of `perWorker` slots, measures them, stops them; nothing is left behind. */
export async function measurePoint(redisUrl: string, redis: Redis, workers: number, perWorker: number, log: Logger): Promise<ScalePoint> {
  const prefix = `bench-scale-${randomId(6)}`;
  const slotsTotal = workers * perWorker;
  progress(`${workers} worker(s) x ${perWorker} slots: cold start`);
  global.gc?.();
  const memBefore = availableMemMb();
  const ws = Array.from({ length: workers }, () => new SlotWorker({ redisUrl, prefix, slots: perWorker, warmSpares: 0, logger: log }));
  const backend = new SlotBackend({ redisUrl, prefix, logger: log });
  const failures: FailureLog = { count: 0 };
  try {
    const t0 = performance.now();
    await Promise.all(ws.map((w) => w.start()));
    const coldStartMs = performance.now() - t0;
    const hostMemPerSlotMb = (memBefore - availableMemMb()) / slotsTotal;
    await backend.start();
    const slots: Slot[] = [];
    for (let i = 0; i < slotsTotal; i++) slots.push(await backend.acquire(`scale-${i}`, { timeoutMs: 30_000 }));
    progress(`${slotsTotal} slots: ${SERIAL_CALLS} calls one at a time, then batches of ${slotsTotal} for ~${THROUGHPUT_S} s`);
    const serial = summarize((await e2eSerial(backend, slots[0]!, COMMAND, SERIAL_CALLS, 30, failures)).samplesMs);
    const run = await throughput(backend, slots, failures);
    const workerRssMb = process.memoryUsage().rss / 2 ** 20;
    for (const s of slots) await backend.release(s).catch(() => undefined);
    const point = { workers, slots: slotsTotal, coldStartMs: round(coldStartMs, 0), callsPerS: run.callsPerS, p50Ms: serial.p50Ms, p99Ms: serial.p99Ms, hostMemPerSlotMb: round(hostMemPerSlotMb, 1), workerRssMb: round(workerRssMb, 0), failures: failures.count };
    progress(JSON.stringify(point));
    return point;
  } finally {
    await backend.stop({ purge: true }).catch(() => undefined);
    await Promise.all(ws.map((w) => w.stop()));
    await leftovers(redis, prefix);
  }
}

/**
 * The scale curve: one worker at each slot count, then two workers sharing the largest count below the
 * top against the same Redis. Slot counts the host's memory cannot hold (about 8 MB a slot measured, kept
 * at 2x) are left out and named.
 */
export async function runScale(redisUrl: string, redis: Redis, log: Logger, requested: number[] = [8, 32, 128, 256], twoWorkersOf = 128): Promise<ScaleResults> {
  const budgetSlots = Math.floor(availableMemMb() / 16);
  const counts = requested.filter((n) => n <= budgetSlots);
  const points: ScalePoint[] = [];
  for (const n of counts) points.push(await measurePoint(redisUrl, redis, 1, n, log));
  if (2 * twoWorkersOf <= budgetSlots) points.push(await measurePoint(redisUrl, redis, 2, twoWorkersOf, log));
  const capped = counts.length < requested.length ? `host memory allows about ${budgetSlots} slots: left out ${requested.filter((n) => !counts.includes(n)).join(', ')}` : undefined;
  return { timestamp: new Date().toISOString(), channel: process.env['SLOTQ_CHANNEL'] ?? 'stream', command: COMMAND, requested, ...(capped ? { capped } : {}), points };
}
