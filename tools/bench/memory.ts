import type { Slot, SlotBackend } from '../../src/index.js';
import { round } from './stats.js';

/** Bytes the big-output call prints (the executor must stream it, keeping only head and tail). */
export const BIG_OUTPUT_BYTES = 300_000_000;

export interface BigOutput {
  bytes: number;
  ok: boolean;
  /** Peak RSS of this process (producer and worker both run in it) above its level before the call. */
  rssGrowthMb: number;
}

/**
 * One call printing BIG_OUTPUT_BYTES, with this process's RSS sampled every 20 ms: the worker must not
 * buffer the stream (the test checks the result's shape; the memory number lives here).
 */
export async function bigOutput(backend: SlotBackend, slot: Slot): Promise<BigOutput> {
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const [r] = await backend.executeBatch([[slot, 'bash', { command: `head -c ${BIG_OUTPUT_BYTES} /dev/zero | tr '\\0' a`, timeout: 300 }]]);
    peak = Math.max(peak, process.memoryUsage().rss);
    return { bytes: BIG_OUTPUT_BYTES, ok: r?.success === true && r.metadata.truncated === true, rssGrowthMb: round((peak - rss0) / 2 ** 20, 1) };
  } finally {
    clearInterval(sampler);
  }
}
