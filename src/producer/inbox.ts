import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../shared/errors.js';
import { inboxMessageSchema, type InboxMessage } from '../shared/schemas.js';

/**
 * The one listener per backend: a loop that pops this producer's inbox list (results and slot grants)
 * on a dedicated blocking connection. The list survives a producer's reconnect, unlike pub/sub.
 */
export class Inbox {
  private running = false;
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
        const first = await this.redis.blpop(this.key, 1);
        if (!first) continue;
        this.handle(first[1]);
        const more = await this.redis.lpop(this.key, 512);
        for (const raw of more ?? []) this.handle(raw);
      } catch (err) {
        if (!this.running) break;
        this.log.warn({ err: toError(err).message }, 'inbox read failed; retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
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
