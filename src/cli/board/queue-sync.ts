import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { ExpressAdapter } from '@bull-board/express';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import type { Registry } from '../../shared/registry/registry.js';
import { redactJobData } from './board-access.js';

type BullBoard = ReturnType<typeof createBullBoard>;

/**
 * Keeps Bull Board's queue list equal to the registry's workers: polls the workers set every `pollMs`,
 * adds the queue of a worker that joined and removes the queue of one that left.
 */
export class QueueSync {
  private readonly queues = new Map<string, Queue>();
  private readonly board: BullBoard;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly registry: Registry,
    private readonly keys: Keys,
    serverAdapter: ExpressAdapter,
    private readonly log: Logger,
    private readonly readOnly = true,
    private readonly showJobData = false,
  ) {
    this.board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'slotq' } } });
  }

  /** Syncs once now, then every pollMs. */
  async start(pollMs: number): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), pollMs);
  }

  /** The BullMQ queue of a worker the board currently shows. */
  queueOf(workerId: string): Queue | undefined {
    return this.queues.get(workerId);
  }

  get workerIds(): string[] {
    return [...this.queues.keys()].sort();
  }

  /** One pass; concurrent callers share it. Never throws (Redis trouble is logged and retried next poll). */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    try {
      const live = new Set(await this.registry.listWorkers());
      for (const workerId of live) if (!this.queues.has(workerId)) this.add(workerId);
      for (const workerId of [...this.queues.keys()]) if (!live.has(workerId)) await this.remove(workerId);
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'board: could not list workers');
    }
  }

  private add(workerId: string): void {
    const queue = new Queue(this.keys.queueName(workerId), { connection: this.redis, prefix: this.keys.root });
    queue.on('error', (err) => this.log.warn({ workerId, err: err.message }, 'board: queue error'));
    this.queues.set(workerId, queue);
    const adapter = new BullMQAdapter(queue, { readOnlyMode: this.readOnly, allowRetries: !this.readOnly, description: `slots of worker ${workerId}` });
    if (!this.showJobData) adapter.setFormatter('data', redactJobData);
    this.board.addQueue(adapter);
    this.log.info({ workerId, queue: queue.name }, 'board: worker joined; showing its queue');
  }

  private async remove(workerId: string): Promise<void> {
    const queue = this.queues.get(workerId);
    this.queues.delete(workerId);
    if (!queue) return;
    this.board.removeQueue(queue.name);
    await queue.close().catch(() => undefined);
    this.log.info({ workerId, queue: queue.name }, 'board: worker left; queue removed');
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    this.queues.clear();
  }
}
