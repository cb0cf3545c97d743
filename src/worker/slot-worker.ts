import { Queue, Worker, type Job } from 'bullmq';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadConfig, type SlotqConfig, type SlotqOptions } from '../shared/config.js';
import { SlotqError, codeOf, toError } from '../shared/errors.js';
import { newWorkerId } from '../shared/ids.js';
import { LABELS, keysFor, type Keys } from '../shared/keys.js';
import { silentLogger } from '../shared/logger.js';
import { createRedis, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry.js';
import { callsJobSchema, describeZodError, jobPayloadSchema, type CallsJob, type ExecutionResult, type JobItem } from '../shared/schemas.js';
import type { ContainerDriver, ContainerSpec } from './container-driver.js';
import { ContainerPool } from './container-pool.js';
import { DockerDriver } from './docker-driver.js';
import { SlotRuntime } from './slot-runtime.js';
import { CONTAINER_MAIN_CMD } from './supervisor-script.js';
import { executeCall, failure } from './tools.js';
import { replyResults } from './reply.js';

export interface SlotWorkerOptions extends SlotqOptions {
  workerId?: string;
  driver?: ContainerDriver;
  logger?: Logger;
  /** How long stop() lets calls in flight finish before failing them (ms). */
  drainTimeoutMs?: number;
}

const INBOX_TTL_MS = 600_000;

/**
 * Owns a set of container slots: creates them, registers them in Redis, executes the jobs of its own
 * queue (FIFO per slot, slots in parallel), resets slots, and cleans everything up on stop.
 */
export class SlotWorker {
  readonly workerId: string;
  readonly config: SlotqConfig;
  readonly keys: Keys;
  readonly slots = new Map<string, SlotRuntime>();
  private readonly log: Logger;
  private readonly driver: ContainerDriver;
  private readonly drainTimeoutMs: number;
  private redis: Redis | undefined;
  private registry: Registry | undefined;
  private bull: Worker | undefined;
  private pool: ContainerPool | undefined;
  private timers: NodeJS.Timeout[] = [];
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  readonly stats = { calls: 0, failures: 0 };

  constructor(opts: SlotWorkerOptions = {}) {
    this.config = loadConfig(opts);
    this.workerId = opts.workerId ?? newWorkerId();
    this.keys = keysFor(this.config.prefix);
    this.driver = opts.driver ?? new DockerDriver();
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.log = (opts.logger ?? silentLogger()).child({ workerId: this.workerId });
  }

  get queueName(): string {
    return this.keys.queueName(this.workerId);
  }
  private get heartbeatTtlMs(): number {
    return Math.max(1000, Math.round(this.config.workerLostMs * 0.7));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`SlotWorker.start() called in state ${this.state}`);
    this.state = 'starting';
    const t0 = Date.now();
    try {
      await this.driver.ping();
      if (!(await this.driver.imageExists(this.config.image))) {
        throw new Error(`sandbox image ${this.config.image} not found: build it with \`bash scripts/build-images.sh\` (or set SLOTQ_IMAGE)`);
      }
      this.redis = createRedis(this.config.redisUrl, { name: `slotq-worker-${this.workerId}` });
      await verifyRedis(this.redis, this.config.redisUrl);
      this.registry = new Registry(this.redis, this.keys);
      await this.reapDead();
      this.pool = new ContainerPool(this.driver, this.containerSpec(), this.config.warmSpares, this.config.maxConcurrentCreates, this.log);
      await this.registry.registerWorker(this.workerId, this.heartbeatTtlMs, this.info());
      await this.createSlots();
      this.bull = new Worker(this.queueName, (job) => this.process(job), {
        connection: createRedis(this.config.redisUrl, { blocking: true, name: `slotq-worker-${this.workerId}-bull` }),
        prefix: this.keys.root,
        concurrency: Math.max(32, this.config.slots * 4),
        maxStalledCount: 0,
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 5000 },
      });
      this.bull.on('error', (err) => this.log.warn({ err: err.message }, 'queue worker error'));
      await this.bull.waitUntilReady();
      for (const slot of this.slots.values()) await this.registry.addSlot(slot.slotId, this.workerId, slot.containerId);
      this.pool.refill();
      this.timers.push(setInterval(() => void this.tick(), Math.max(250, Math.round(this.heartbeatTtlMs / 4))));
      this.state = 'running';
      this.log.info({ slots: this.slots.size, queue: this.queueName, ms: Date.now() - t0 }, 'worker started');
    } catch (err) {
      this.log.error({ err: toError(err).message }, 'worker failed to start');
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private info(): Record<string, string | number> {
    return { host: hostname(), pid: process.pid, slots: this.config.slots, queue: this.queueName, image: this.config.image, startedAtMs: Date.now(), state: 'up' };
  }

  private containerSpec(): ContainerSpec {
    const c = this.config;
    return {
      image: c.image,
      cmd: CONTAINER_MAIN_CMD,
      network: c.network,
      memoryMb: c.memoryMb,
      cpus: c.cpus,
      pids: c.pids,
      labels: { [LABELS.managed]: 'true', [LABELS.prefix]: c.prefix, [LABELS.worker]: this.workerId, [LABELS.host]: hostname() },
    };
  }

  private async createSlots(): Promise<void> {
    const ids = Array.from({ length: this.config.slots }, (_, i) => `${this.workerId}-s${i}`);
    await Promise.all(
      ids.map(async (slotId) => {
        const containerId = await this.pool!.create();
        const slot = new SlotRuntime(slotId, containerId, this.driver, this.log.child({ slotId }));
        this.slots.set(slotId, slot);
        await slot.openSession();
      }),
    );
  }

  /** Heartbeat, lease reaping, broken-slot replacement. Never throws. */
  private async tick(): Promise<void> {
    if (this.state !== 'running' || !this.registry) return;
    try {
      if (!(await this.registry.heartbeat(this.workerId, this.heartbeatTtlMs))) {
        this.log.warn('registry entry vanished (Redis restarted?); registering again');
        await this.registry.registerWorker(this.workerId, this.heartbeatTtlMs, this.info());
        for (const slot of this.slots.values()) if (!slot.busy) await this.registry.addSlot(slot.slotId, this.workerId, slot.containerId);
      }
      for (const slotId of await this.registry.reapLeases(this.workerId)) {
        this.log.info({ slotId }, 'lease expired; resetting slot');
        void this.resetSlot(slotId);
      }
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'heartbeat failed');
    }
  }

  /** Removes registry entries, queues and local containers of workers whose heartbeat expired. */
  private async reapDead(): Promise<void> {
    const dead = await this.registry!.reapDeadWorkers();
    for (const id of dead) {
      const q = new Queue(this.keys.queueName(id), { connection: this.redis!, prefix: this.keys.root });
      await q.obliterate({ force: true }).catch(() => undefined);
      await q.close();
    }
    const mine = await this.driver.listManaged([`${LABELS.prefix}=${this.config.prefix}`, `${LABELS.host}=${hostname()}`]);
    for (const c of mine) {
      const owner = c.labels[LABELS.worker];
      if (owner && owner !== this.workerId && !(await this.registry!.workerAlive(owner))) {
        this.log.info({ containerId: c.id.slice(0, 12), deadWorker: owner }, 'removing container left by a dead worker');
        await this.driver.remove(c.id);
      }
    }
  }

  private async process(job: Job): Promise<unknown> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) return this.rejectPayload(job, describeZodError(parsed.error));
    const payload = parsed.data;
    if (payload.kind === 'reset') {
      await this.resetSlot(payload.slotId);
      return { reset: payload.slotId };
    }
    const results = await this.runCalls(payload, job.id ?? '');
    await replyResults(this.redis!, this.keys.inbox(payload.producerId), job.id ?? '', results, INBOX_TTL_MS);
    const failed = results.filter(([, r]) => !r.success).length;
    return { calls: results.length, failed };
  }

  private async runCalls(job: CallsJob, jobId: string): Promise<Array<[number, ExecutionResult]>> {
    const pairs = [...new Map(job.items.map((i) => [i.slotId, i.leaseId] as const)).entries()];
    const current = new Map(pairs.map(([s], i) => [s, i]));
    const valid = await this.registry!.checkLeases(pairs);
    // Enqueue synchronously, in item order: this is what keeps each slot FIFO.
    const runs = job.items.map((item): Promise<[number, ExecutionResult]> => {
      const slot = this.slots.get(item.slotId);
      const log = this.log.child({ jobId, slotId: item.slotId, executionId: item.executionId });
      if (!slot) return Promise.resolve([item.index, failure(item, 'WORKER_LOST', `Slot ${item.slotId} is not served by worker ${this.workerId} (it was stopped or replaced)`)]);
      if (!valid[current.get(item.slotId)!] || item.leaseId !== pairs[current.get(item.slotId)!]![1]) {
        return Promise.resolve([item.index, failure(item, 'LEASE_LOST', `Slot ${item.slotId} is not held by this caller any more (released, or its lease expired): acquire a slot again`)]);
      }
      return slot.enqueue(() => this.runOne(slot, item, log)).then((r) => [item.index, r]);
    });
    return Promise.all(runs);
  }

  private async runOne(slot: SlotRuntime, item: JobItem, log: Logger): Promise<ExecutionResult> {
    this.stats.calls++;
    let result: ExecutionResult;
    try {
      result = await executeCall((req) => slot.run(req), item);
    } catch (err) {
      const code = codeOf(err);
      result = failure(item, code, toError(err).message, err instanceof SlotqError ? { retryable: err.retryable } : {});
      if (code === 'SLOT_BROKEN') void this.replaceBroken(slot);
    }
    if (!result.success) this.stats.failures++;
    log.debug({ tool: item.tool, success: result.success, code: result.metadata.code, ms: result.metadata.durationMs }, 'call done');
    return result;
  }

  /** An invalid payload is a failed result (INVALID_ARGS) when it says where to reply, else a failed job. */
  private async rejectPayload(job: Job, why: string): Promise<unknown> {
    this.log.warn({ jobId: job.id, why }, 'invalid job payload');
    const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as Record<string, unknown>;
    const loose = callsJobSchema.pick({ producerId: true }).safeParse(data);
    const items = Array.isArray(data['items']) ? (data['items'] as unknown[]) : [];
    if (!loose.success) throw new SlotqError('INVALID_ARGS', `Invalid job payload: ${why}`);
    const results = items.map((raw, i): [number, ExecutionResult] => {
      const it = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const index = typeof it['index'] === 'number' ? it['index'] : i;
      const str = (v: unknown, dflt: string): string => (typeof v === 'string' ? v : dflt);
      const ids = { executionId: str(it['executionId'], `${job.id}-${index}`), slotId: str(it['slotId'], '') };
      return [index, failure(ids, 'INVALID_ARGS', `Invalid job payload: ${why}`)];
    });
    await replyResults(this.redis!, this.keys.inbox(loose.data.producerId), job.id ?? '', results, INBOX_TTL_MS);
    return { invalid: why };
  }

  /** Gives a slot a pristine container (a warm spare when there is one), then frees it. */
  async resetSlot(slotId: string): Promise<void> {
    const slot = this.slots.get(slotId);
    if (!slot) return;
    await slot.enqueue(async () => {
      const old = slot.containerId;
      try {
        await slot.attachContainer(await this.pool!.take());
      } catch (err) {
        this.log.error({ slotId, err: toError(err).message }, 'reset failed: no new container');
        slot.brokenReason = `reset failed: ${toError(err).message}`;
        return;
      } finally {
        void this.driver.remove(old).catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'removing an old container failed'));
      }
      slot.workspaceLost = false;
      if (this.state === 'running') await this.registry!.addSlot(slotId, this.workerId, slot.containerId);
    });
  }

  /** Replaces a dead container off the caller's path; the slot stays leased to its holder. */
  private async replaceBroken(slot: SlotRuntime): Promise<void> {
    if (slot.brokenReason === undefined || this.state !== 'running') return;
    try {
      await slot.attachContainer(await this.pool!.take());
      slot.workspaceLost = true;
      this.log.warn({ slotId: slot.slotId }, 'replaced a dead container');
    } catch (err) {
      this.log.error({ slotId: slot.slotId, err: toError(err).message }, 'replacing a dead container failed');
    }
  }

  /**
   * Stops taking jobs, lets calls in flight finish (up to drainTimeoutMs), tells producers about jobs
   * that never ran, removes the containers and the registry entries.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.registry) await this.registry.drainWorker(this.workerId).catch(() => undefined);
    if (this.bull) {
      const closing = this.bull.close();
      const timedOut = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), this.drainTimeoutMs).unref())]);
      if (timedOut) {
        this.log.warn('calls still running at the drain deadline; killing their containers');
        await this.bull.close(true).catch(() => undefined);
      }
      await this.failWaitingJobs().catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'could not fail waiting jobs'));
    }
    for (const slot of this.slots.values()) slot.close();
    await Promise.all([...this.slots.values()].map((s) => this.driver.remove(s.containerId).catch(() => undefined)));
    await this.pool?.close().catch(() => undefined);
    if (this.registry) await this.registry.unregisterWorker(this.workerId).catch(() => undefined);
    await this.bull?.disconnect().catch(() => undefined);
    this.redis?.disconnect();
    this.state = 'stopped';
    this.log.info('worker stopped');
  }

  /** Jobs still waiting in this worker's queue get WORKER_LOST results, then the queue is removed. */
  private async failWaitingJobs(): Promise<void> {
    if (!this.redis) return;
    const q = new Queue(this.queueName, { connection: this.redis, prefix: this.keys.root });
    try {
      for (const job of await q.getJobs(['waiting', 'prioritized', 'delayed', 'active'])) {
        const parsed = callsJobSchema.safeParse(job.data);
        if (!parsed.success) continue;
        const results = parsed.data.items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'WORKER_LOST', `Worker ${this.workerId} stopped before running this call: retry it on another slot`)]);
        await replyResults(this.redis, this.keys.inbox(parsed.data.producerId), job.id ?? '', results, INBOX_TTL_MS);
      }
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
  }
}
