import type { Redis } from 'ioredis';
import { REPLY_CHUNK_BYTES } from '../../shared/config.js';
import { INBOX_TTL_MS } from '../../shared/retention.js';
import { pushInbox } from '../../shared/inbox-push.js';
import type { ExecutionResult } from '../../shared/calls/schemas.js';


export interface ReplyOptions {
  /** Results are grouped into inbox messages of at most this many bytes; a single larger result goes alone. */
  chunkBytes?: number;
  ttlMs?: number;
}

/**
 * A job's results as inbox messages (`{"t":"results","jobId",...}`), each at most chunkBytes long unless
 * one result alone is longer (every result is bounded by its tool's caps). Each result is serialised once;
 * the producer matches them by job ID and index (pending-jobs.ts), so a job may arrive in any number of parts.
 */
export function replyMessages(jobId: string, results: ReadonlyArray<readonly [number, ExecutionResult]>, chunkBytes = REPLY_CHUNK_BYTES): string[] {
  const open = `{"t":"results","jobId":${JSON.stringify(jobId)},"results":[`;
  const frameBytes = Buffer.byteLength(open) + 2;
  const messages: string[] = [];
  let parts: string[] = [];
  let bytes = frameBytes;
  const flush = (): void => {
    if (parts.length) messages.push(`${open}${parts.join(',')}]}`);
    parts = [];
    bytes = frameBytes;
  };
  for (const pair of results) {
    const part = JSON.stringify(pair);
    const partBytes = Buffer.byteLength(part) + 1;
    if (parts.length && bytes + partBytes > chunkBytes) flush();
    parts.push(part);
    bytes += partBytes;
  }
  flush();
  if (!messages.length) messages.push(`${open}]}`);
  return messages;
}

/**
 * Sends a job's results to the producer's inbox list in bounded messages, one after another: pushInbox's
 * one script, one command on the wire per message (cheaper than a two-command pipeline on the
 * worker's event loop, which is on every call's path). A job of many large results (archives) never makes
 * one message past Redis's bulk limit, which would lose calls that ran.
 */
export async function replyResults(redis: Redis, inbox: string, jobId: string, results: Array<[number, ExecutionResult]>, opts: ReplyOptions = {}): Promise<void> {
  for (const message of replyMessages(jobId, results, opts.chunkBytes)) await pushInbox(redis, inbox, message, opts.ttlMs ?? INBOX_TTL_MS);
}
