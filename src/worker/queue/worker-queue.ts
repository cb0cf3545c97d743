import { Queue, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../../shared/config.js';
import { settlesWithin } from '../../shared/deadline.js';
import { toError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import { connectRedis } from '../../shared/redis.js';
import { JOB_RETENTION } from '../../shared/retention.js';
import { fenceJob } from '../../shared/calls/call-fence.js';
import { mayHaveRun, neverRan } from '../../shared/calls/call-outcome.js';
import { callsJobSchema, type ExecutionResult } from '../../shared/calls/schemas.js';
import { FetchProbes } from './fetch-probe.js';
import { ProbingWorker } from './probing-worker.js';
import { replyResults } from './reply.js';
import { SlotAdmission } from './slot-admission.js';

/**
 * The worker's own BullMQ queue: consumes its jobs (many at once, a bounded number per slot; per-slot order is the slots' FIFOs),
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
    /** The worker's current incarnation (liveness.ts): calls start only under it. */
    epoch: () => string,
  ) {
    this.probes = new FetchProbes(keys, workerId, epoch, log);
  }

  get name(): string {
    return this.keys.queueName(this.workerId);
  }

  /**
   * Consumes the queue with `process` behind the per-slot limit (slot-admission.ts); maxSlots: the slots the
   * worker may serve at once (its pool and its on-demand ones), which sizes BullMQ's concurrency.
   */
  async start(process: (job: Job) => Promise<unknown>, maxSlots = this.config.slots): Promise<void> {
    const admission = new SlotAdmission({ workerId: this.workerId, redis: this.redis, keys: this.keys, log: this.log });
    this.bull = new ProbingWorker(this.name, admission.wrap(process), {
      connection: connectRedis(this.config, { blocking: true, name: `slotq-worker-${this.workerId}-bull` }),
      prefix: this.keys.root,
      concurrency: admission.concurrency(maxSlots),
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
    const closed = await settlesWithin(this.bull.close(), drainTimeoutMs);
    // Past the deadline the jobs still running are abandoned: fenced and answered first (a forced close
    // still waits for them), then their containers go with the worker's stop.
    if (!closed) this.log.warn('calls still running at the drain deadline: abandoning them (fenced, answered outcome unknown)');
    await this.failWaitingJobs().catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'could not fail waiting jobs'));
    if (!closed) await settlesWithin(this.bull.close(true).catch(() => undefined), 1000);
  }

  async disconnect(): Promise<void> {
    await this.bull?.disconnect().catch(() => undefined);
  }

  /**
   * Jobs left in the queue are fenced (none of their calls starts after this) and get WORKER_LOST results:
   * retryable for calls that never started, outcome unknown for those that had (a job the drain deadline
   * abandoned). Then the queue is removed.
   */
  private async failWaitingJobs(): Promise<void> {
    const q = new Queue(this.name, { connection: this.redis, prefix: this.keys.root });
    try {
      for (const job of await q.getJobs(['waiting', 'prioritized', 'delayed', 'active'])) {
        const parsed = callsJobSchema.safeParse(job.data);
        if (!parsed.success || !job.id) continue;
        const { state, started } = await fenceJob(this.redis, this.keys.job(this.workerId, job.id));
        if (state === 'finished') continue; // its results went out
        const reason = `Worker ${this.workerId} stopped`;
        const results = parsed.data.items.map((it): [number, ExecutionResult] => [it.index, started.has(it.index) ? mayHaveRun(it, `${reason} while this call ran (the drain deadline passed)`) : neverRan(it, reason)]);
        await replyResults(this.redis, this.keys.inbox(parsed.data.producerId), job.id, results, { chunkBytes: this.config.replyChunkBytes });
      }
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
  }
}
