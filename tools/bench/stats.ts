import { percentile } from '../../src/cli/stats.js';

/** Latency summary of one set of samples (ms). */
export interface LatencySummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}


export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    meanMs: round(sorted.length ? sum / sorted.length : Number.NaN),
    minMs: round(sorted[0] ?? Number.NaN),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}

/** Rounds to `digits` decimals (3 by default), keeping results.json readable. */
export const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/**
 * Total commands Redis has run, from `INFO commandstats`: the sum of `calls=` over every cmdstat_* line
 * (commands run inside Lua scripts are counted there too).
 */
export function commandCalls(info: string): number {
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)) total += Number(m[1]);
  return total;
}

/** Runs `lanes` loops that share `total` iterations of fn; resolves when all are done. */
export async function runLanes(lanes: number, total: number, fn: () => Promise<void>): Promise<void> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < total) {
      started++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

/** What `echo X` prints; used to check that every call really ran. */
export const expectedOutput = (command: string): string => command.replace(/^echo\s+/, '').trim();
