import type { Redis } from 'ioredis';
import { INBOX_TTL_MS } from './retention.js';

/** KEYS[1]: the inbox; ARGV: the message, the inbox's TTL (ms). Reading the inbox empty deletes it, so every push sets the TTL. */
const PUSH_INBOX = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

type InboxRedis = Redis & { slotqPushInbox(inbox: string, message: string, ttlMs: number): Promise<number> };

/**
 * The one way to push a message to a producer's inbox list (results, grants, refusals): RPUSH and PEXPIRE
 * in one script, one command on the wire, so an inbox never lives without its TTL.
 */
export async function pushInbox(redis: Redis, inbox: string, message: string, ttlMs = INBOX_TTL_MS): Promise<void> {
  const r = redis as InboxRedis;
  if (typeof r.slotqPushInbox !== 'function') r.defineCommand('slotqPushInbox', { lua: PUSH_INBOX, numberOfKeys: 1 });
  await r.slotqPushInbox(inbox, message, ttlMs);
}
