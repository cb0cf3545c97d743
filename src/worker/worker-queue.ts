import { Queue, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../shared/config.js';
import { settlesWithin } from '../shared/deadline.js';
import { toError } from '../shared/errors.js';
import type { Keys } from '../shared/keys.js';
import { connectRedis } from '../shared/redis.js';
import { JOB_RETENTION } from '../shared/retention.js';
import { callsJobSchema, type ExecutionResult } from '../shared/schemas.js';
import { failure } from './call-result.js';
import { FetchProbes } from './fetch-probe.js';
import { ProbingWorker } from './probing-worker.js';
import { replyResults } from './reply.js';

/**
 * The worker's own BullMQ queue: consumes its jobs (many at once; per-slot order is the slots' FIFOs),
 * and on stop drains it: calls in flight finish (up to a deadline), jobs that never ran get WORKER_LOST
 * results, and the queue is removed.
 */
export class WorkerQueue {
  private bull: Worker | undefined;
  /** Each job's lease check, made the moment BullMQ hands the job out (the job processor takes it). */
  readonly probes: FetchProbes;

  constructor(
    private readonly workerId: string,
    private readonly config: SlotqConfig,
    private readonly keys: Keys,
    private readonly redis: Redis,
    private readonly log: Logger,
  ) {
    this.probes = new FetchProbes(keys.slots, log);
  }

  get name(): string {
    return this.keys.queueName(this.workerId);
  }

  async start(process: (job: Job) => Promise<unknown>): Promise<void> {
    this.bull = new ProbingWorker(this.name, process, {
      connection: connectRedis(this.config, { blocking: true, name: `slotq-worker-${this.workerId}-bull` }),
      prefix: this.keys.root,
      concurrency: Math.max(32, this.config.slots * 4),
      maxStalledCount: 0,
      ...JOB_RETENTION, // jobs carry their own (the same); this covers a job added without
    }, this.probes);
    this.bull.on('error', (err) => this.log.warn({ err: err.message }, 'queue worker error'));
    const bull = this.bull;
    bull.run().catch((err: unknown) => bull.emit('error', toError(err)));
    await bull.waitUntilReady();
  }

  /** Stops taking jobs; lets those running finish up to drainTimeoutMs (then abandons them); fails the rest. */
  async drain(drainTimeoutMs: number): Promise<void> {
    if (!this.bull) return;
    if (!(await settlesWithin(this.bull.close(), drainTimeoutMs))) {
      this.log.warn('calls still running at the drain deadline; killing their containers');
      await this.bull.close(true).catch(() => undefined);
    }
    await this.failWaitingJobs().catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'could not fail waiting jobs'));
  }

  async disconnect(): Promise<void> {
    await this.bull?.disconnect().catch(() => undefined);
  }

  /** Jobs still waiting in the queue get WORKER_LOST results, then the queue is removed. */
  private async failWaitingJobs(): Promise<void> {
    const q = new Queue(this.name, { connection: this.redis, prefix: this.keys.root });
    try {
      for (const job of await q.getJobs(['waiting', 'prioritized', 'delayed', 'active'])) {
        const parsed = callsJobSchema.safeParse(job.data);
        if (!parsed.success) continue;
        const message = `Worker ${this.workerId} stopped before running this call: retry it on another slot`;
        const results = parsed.data.items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'WORKER_LOST', message)]);
        await replyResults(this.redis, this.keys.inbox(parsed.data.producerId), job.id ?? '', results, { chunkBytes: this.config.replyChunkBytes });
      }
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
  }
}
