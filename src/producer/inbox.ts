import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../shared/errors.js';
import { inboxMessageSchema, type InboxMessage } from '../shared/calls/schemas.js';

/** The most messages taken from the inbox at once. */
const BATCH = 512;

/**
 * The one listener per backend: a loop that pops this producer's inbox list (results and slot grants)
 * on a dedicated blocking connection. The list survives a producer's reconnect, unlike pub/sub.
 */
export class Inbox {
  private running = false;
  private blmpop = true;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly onMessage: (msg: InboxMessage) => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const messages = await this.pop();
        for (const raw of messages) this.handle(raw);
        // Let the callers woken by these messages run (and send their next calls) before the next read.
        if (messages.length > 0) await new Promise((r) => setImmediate(r));
      } catch (err) {
        if (!this.running) break;
        this.log.warn({ err: toError(err).message }, 'inbox read failed; retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  /**
   * Waits up to a second for messages and takes up to BATCH of them: one BLMPOP (Redis 7), so a
   * result costs one command and one wake-up; BLPOP then LPOP on a Redis without BLMPOP.
   */
  private async pop(): Promise<string[]> {
    if (this.blmpop) {
      try {
        const res = await this.redis.blmpop(1, 1, this.key, 'LEFT', 'COUNT', BATCH);
        return res?.[1] ?? [];
      } catch (err) {
        if (!/unknown command/i.test(toError(err).message)) throw err;
        this.blmpop = false;
        this.log.info('this Redis has no BLMPOP (Redis < 7): reading the inbox with BLPOP and LPOP');
      }
    }
    const first = await this.redis.blpop(this.key, 1);
    if (!first) return [];
    const more = await this.redis.lpop(this.key, BATCH - 1);
    return [first[1], ...(more ?? [])];
  }

  private handle(raw: string): void {
    let parsed;
    try {
      parsed = inboxMessageSchema.safeParse(JSON.parse(raw));
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'dropping an inbox message that is not JSON');
      return;
    }
    if (!parsed.success) {
      this.log.warn({ issues: parsed.error.issues.slice(0, 3) }, 'dropping a malformed inbox message');
      return;
    }
    try {
      this.onMessage(parsed.data);
    } catch (err) {
      this.log.error({ err: toError(err).message }, 'handling an inbox message failed');
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
