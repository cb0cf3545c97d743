import type { Redis } from 'ioredis';
import { INBOX_TTL_MS } from '../shared/retention.js';
import type { ExecutionResult, InboxMessage } from '../shared/schemas.js';

/** KEYS[1]: the inbox; ARGV: the message, the inbox's TTL (ms). Reading the inbox empty deletes it, so every push sets the TTL. */
const PUSH_REPLY = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

type ReplyRedis = Redis & { slotqPushReply(inbox: string, message: string, ttlMs: number): Promise<number> };

/**
 * Sends a job's results to the producer's inbox list: RPUSH and PEXPIRE in one script, one command on
 * the wire (cheaper than a two-command pipeline on the worker's event loop, which is on every call's path).
 */
export async function replyResults(redis: Redis, inbox: string, jobId: string, results: Array<[number, ExecutionResult]>, ttlMs = INBOX_TTL_MS): Promise<void> {
  const msg: InboxMessage = { t: 'results', jobId, results };
  const r = redis as ReplyRedis;
  if (typeof r.slotqPushReply !== 'function') r.defineCommand('slotqPushReply', { lua: PUSH_REPLY, numberOfKeys: 1 });
  await r.slotqPushReply(inbox, JSON.stringify(msg), ttlMs);
}
