import type { Redis } from 'ioredis';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import type { ThroughputRun } from './baseline.js';
import { cpuPerCallUs, cpuSnapshot } from './cpu.js';
import { commandCalls, expectedOutput, round, runLanes, summarize } from './stats.js';

export interface FailureLog {
  count: number;
  first?: string;
  /** metadata.durationMs of every checked call, when the caller wants them. */
  inSlotMs?: number[];
}

/** Counts results that are not a successful `echo`-style call; keeps the first message. */
export function checkResults(results: readonly ExecutionResult[], expected: string, log: FailureLog): void {
  for (const r of results) {
    log.inSlotMs?.push(r.metadata.durationMs);
    if (r.success && r.output.trim() === expected) continue;
    log.count++;
    log.first ??= `${r.metadata.code ?? 'WRONG_OUTPUT'}: ${r.error || JSON.stringify(r.output.slice(0, 200))}`;
  }
}

export interface E2eSerial {
  samplesMs: number[];
  /** e2e latency minus the time the call spent inside the slot (metadata.durationMs). */
  overheadMs: number[];
}

/** One call at a time on one slot, through the whole path (producer → Redis → worker → container → back). */
export async function e2eSerial(backend: SlotBackend, slot: Slot, command: string, iterations: number, warmup: number, log: FailureLog): Promise<E2eSerial> {
  const samplesMs: number[] = [];
  const overheadMs: number[] = [];
  const expected = expectedOutput(command);
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now();
    const results = await backend.executeBatch([[slot, 'bash', { command }]]);
    const ms = performance.now() - t0;
    checkResults(results, expected, log);
    if (i < warmup) continue;
    samplesMs.push(ms);
    overheadMs.push(ms - (results[0]?.metadata.durationMs ?? 0));
  }
  return { samplesMs, overheadMs };
}

/** `batches` batches of one call per slot, with `inFlight` batches outstanding at any time. */
export async function e2eBatches(backend: SlotBackend, slots: readonly Slot[], command: string, batches: number, inFlight: number, log: FailureLog): Promise<ThroughputRun> {
  const requests = slots.map((s) => [s, 'bash', { command }] as const);
  const expected = expectedOutput(command);
  const before = log.count;
  log.inSlotMs = [];
  const cpu0 = cpuSnapshot();
  const t0 = performance.now();
  await runLanes(inFlight, batches, async () => checkResults(await backend.executeBatch(requests), expected, log));
  const seconds = (performance.now() - t0) / 1000;
  const calls = batches * slots.length;
  const cpuUs = cpuPerCallUs(cpu0, cpuSnapshot(), calls);
  const failures = log.count - before;
  const inSlotP50Ms = summarize(log.inSlotMs).p50Ms;
  delete log.inSlotMs;
  return { inFlight, calls, seconds: round(seconds), callsPerS: round((calls - failures) / seconds, 1), failures, inSlotP50Ms, cpuUs };
}

/**
 * Redis commands run while fn runs (INFO commandstats delta, all clients), minus the INFO this
 * measurement issued inside the window (Redis counts a command after it ran, so the first INFO only).
 */
export async function countRedisCommands<T>(redis: Redis, fn: () => Promise<T>): Promise<{ commands: number; value: T }> {
  const before = commandCalls(await redis.info('commandstats'));
  const value = await fn();
  const after = commandCalls(await redis.info('commandstats'));
  return { commands: after - before - 1, value };
}
