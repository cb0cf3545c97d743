import type { Redis } from 'ioredis';
import { INBOX_TTL_MS } from '../shared/retention.js';
import type { ExecutionResult, InboxMessage } from '../shared/schemas.js';

/** Sends a job's results to the producer's inbox list: one RPUSH and one PEXPIRE, pipelined. */
export async function replyResults(redis: Redis, inbox: string, jobId: string, results: Array<[number, ExecutionResult]>, ttlMs = INBOX_TTL_MS): Promise<void> {
  const msg: InboxMessage = { t: 'results', jobId, results };
  await redis.pipeline().rpush(inbox, JSON.stringify(msg)).pexpire(inbox, ttlMs).exec();
}
