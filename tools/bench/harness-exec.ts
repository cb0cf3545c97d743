import type { Slot, SlotBackend } from '../../src/index.js';
import { round, summarize } from './stats.js';

export interface HarnessExecRun {
  execP50Ms: number;
  bashP50Ms: number;
  /** exec p50 over bash p50 (the target: within 10 %). */
  ratio: number;
  iterations: number;
  failures: number;
}

/**
 * The harness's exec against the model's `bash` tool: the same command, one call at a time on one slot,
 * alternating (so drift in the machine's load falls on both alike), end to end through the producer.
 */
export async function harnessExecVsBash(backend: SlotBackend, slot: Slot, command: string, iterations: number, warmup: number): Promise<HarnessExecRun> {
  const execMs: number[] = [];
  const bashMs: number[] = [];
  let failures = 0;
  for (let i = 0; i < warmup + iterations; i++) {
    let t0 = performance.now();
    const e = await backend.exec(slot, command);
    const eMs = performance.now() - t0;
    t0 = performance.now();
    const [b] = await backend.executeBatch([[slot, 'bash', { command }]]);
    const bMs = performance.now() - t0;
    if (e.exitCode !== 0 || !b?.success) failures++;
    if (i < warmup) continue;
    execMs.push(eMs);
    bashMs.push(bMs);
  }
  const execP50Ms = summarize(execMs).p50Ms;
  const bashP50Ms = summarize(bashMs).p50Ms;
  return { execP50Ms, bashP50Ms, ratio: round(execP50Ms / bashP50Ms, 3), iterations, failures };
}
