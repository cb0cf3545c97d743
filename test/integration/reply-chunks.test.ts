import { afterEach, expect, it } from 'vitest';
import { harness, type Harness } from '../support/harness.js';
import { startRedis, type LocalRedis } from '../support/redis-servers.js';

let h: Harness | undefined;
let redis: LocalRedis | undefined;
afterEach(async () => {
  await h?.close();
  await redis?.stop();
  h = undefined;
  redis = undefined;
});

const CALLS = 12;
/** ~49 KB of stdout and of stderr per call (under the 50 000-character cap, so each comes back whole). */
const command = (i: number): string => `echo start-${i}; head -c 49000 /dev/zero | tr '\\0' o; echo end-${i}; head -c 49000 /dev/zero | tr '\\0' e >&2`;

it("a job's results travel in bounded inbox messages: a job bigger than Redis's bulk limit arrives whole and in order", async () => {
  // A Redis that refuses any bulk string over 1 MB (its smallest proto-max-bulk-len), standing in for the
  // 512 MB default that ~80 archive calls in one job exceed. One reply message per job would be refused.
  redis = await startRedis(['--proto-max-bulk-len', '1mb']);
  h = harness();
  await h.worker({ redisUrl: redis.url, slots: 3, warmSpares: 0, replyChunkBytes: 256 * 1024 });
  // A short slack, so that without the fix the lost results come back (WORKER_LOST) before the test's timeout.
  const b = await h.backend({ redisUrl: redis.url, deadlineSlackMs: 5000 });
  const slots = [await b.acquire('a'), await b.acquire('b'), await b.acquire('c')];
  // All calls on one worker, interleaved over its slots: one job of 12 results, ~1.2 MB together.
  const results = await b.executeBatch(Array.from({ length: CALLS }, (_, i) => [slots[i % 3]!, 'bash', { command: command(i) }] as const), { timeoutS: 5 });
  expect(results.map((r) => [r.success, r.metadata.code])).toEqual(Array.from({ length: CALLS }, () => [true, undefined]));
  expect(results.reduce((n, r) => n + r.output.length, 0)).toBeGreaterThan(1024 * 1024);
  // Compared as short summaries (a failed toContain would print megabytes).
  const summary = (out: string): [string, number, number] => [out.slice(0, out.indexOf('o')), out.indexOf('e'), out.length];
  expect(results.map((r) => summary(r.output))).toEqual(results.map((_, i) => [`start-${i}\n`, `start-${i}\n`.length + 49_000, `start-${i}\n`.length + 49_000 + `end-${i}\n`.length + '\n[stderr]\n'.length + 49_000]));
  expect(results.map((r, i) => r.output.includes(`oend-${i}\n\n[stderr]\ne`))).toEqual(results.map(() => true));
  for (const s of slots) await b.release(s);
});
