import type { Redis } from 'ioredis';
import type { ExecutionResult, InboxMessage } from '../shared/schemas.js';

/** How long an inbox keeps results nobody popped (a producer that died). */
export const INBOX_TTL_MS = 600_000;

/** Sends a job's results to the producer's inbox list: one RPUSH and one PEXPIRE, pipelined. */
export async function replyResults(redis: Redis, inbox: string, jobId: string, results: Array<[number, ExecutionResult]>, ttlMs = INBOX_TTL_MS): Promise<void> {
  const msg: InboxMessage = { t: 'results', jobId, results };
  await redis.pipeline().rpush(inbox, JSON.stringify(msg)).pexpire(inbox, ttlMs).exec();
}
