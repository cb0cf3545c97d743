import { Worker, type Job } from 'bullmq';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadConfig, type SlotqConfig, type SlotqOptions } from '../shared/config.js';
import { SlotqError, codeOf, toError } from '../shared/errors.js';
import { newWorkerId } from '../shared/ids.js';
import { keysFor, type Keys } from '../shared/keys.js';
import { silentLogger } from '../shared/logger.js';
import { createRedis, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry.js';
import { describeZodError, jobPayloadSchema, type CallsJob, type ExecutionResult, type JobItem } from '../shared/schemas.js';
import type { ContainerDriver } from './container-driver.js';
import { ContainerPool } from './container-pool.js';
import { DockerDriver } from './docker-driver.js';
import { SlotRuntime } from './slot-runtime.js';
import { slotContainerSpec } from './container-spec.js';
import { executeCall, failure, type ArtifactIo } from './tools.js';
import { replyResults } from './reply.js';
import { failWaitingJobs, reapDeadWorkers, rejectInvalidPayload, type WorkerContext } from './housekeeping.js';
import type { WorkerEventMap } from './worker-events.js';
import { WorkerMetrics } from './worker-metrics.js';

export interface SlotWorkerOptions extends SlotqOptions {
  workerId?: string;
  driver?: ContainerDriver;
  logger?: Logger;
  /** How long stop() lets calls in flight finish before failing them (ms). */
  drainTimeoutMs?: number;
}

/** How often a worker sweeps for dead workers' registry entries, queues and containers on its host. */
const SWEEP_INTERVAL_MS = 10_000;

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
  private lastSweepMs = Date.now();
  private ticking = false;
  private readonly removals = new Set<Promise<void>>();
  private state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  /** `call:done`, `container:created`, `container:failed` (see worker-events.ts). */
  readonly events = new EventEmitter<WorkerEventMap>();
  private readonly metrics = new WorkerMetrics(this.events);

  constructor(opts: SlotWorkerOptions = {}) {
    this.config = loadConfig(opts);
    this.workerId = opts.workerId ?? newWorkerId();
    this.keys = keysFor(this.config.prefix);
    this.driver = opts.driver ?? new DockerDriver();
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    this.log = (opts.logger ?? silentLogger()).child({ workerId: this.workerId });
  }

  private ctx(): WorkerContext {
    return { workerId: this.workerId, prefix: this.config.prefix, redis: this.redis!, keys: this.keys, registry: this.registry!, driver: this.driver, log: this.log };
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
      await reapDeadWorkers(this.ctx());
      this.pool = new ContainerPool(this.driver, slotContainerSpec(this.config, this.workerId), this.config.warmSpares, this.config.maxConcurrentCreates, this.log, this.events);
      await this.registry.registerWorker(this.workerId, this.heartbeatTtlMs, this.info());
      // Heartbeat from here on: creating many containers can take longer than the heartbeat's TTL.
      this.timers.push(setInterval(() => void this.tick(), Math.max(250, Math.round(this.heartbeatTtlMs / 4))));
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

  /** Creates every slot; a slot that fails is retried on a new container. Waits for all before failing. */
  private async createSlots(): Promise<void> {
    const ids = Array.from({ length: this.config.slots }, (_, i) => `${this.workerId}-s${i}`);
    const settled = await Promise.allSettled(ids.map((slotId) => this.createSlot(slotId)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new Error(`could not bring up every slot: ${toError(failed.reason).message}`, { cause: failed.reason });
  }

  private async createSlot(slotId: string, attempts = 3): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const containerId = await this.pool!.create();
      const slot = new SlotRuntime(slotId, containerId, this.driver, this.log.child({ slotId }));
      this.slots.set(slotId, slot); // registered before the session opens, so stop() removes it either way
      try {
        return await slot.openSession();
      } catch (err) {
        slot.close();
        await this.driver.remove(containerId);
        this.slots.delete(slotId);
        if (attempt >= attempts) throw err;
        this.log.warn({ slotId, attempt, err: toError(err).message }, 'slot did not come up; retrying on a new container');
      }
    }
  }

  /** Heartbeat, lease reaping, broken-slot replacement. Never throws. */
  private async tick(): Promise<void> {
    // One tick at a time: while Redis is away ticks would pile up and each would resync on its return.
    if (!this.registry || this.ticking || this.state === 'idle' || this.state === 'stopped') return;
    this.ticking = true;
    try {
      const alive = await this.registry.heartbeat(this.workerId, this.heartbeatTtlMs);
      // While starting or draining only the heartbeat runs: calls in flight must not look like a dead worker's.
      if (this.state === 'starting') {
        if (!alive) await this.registry.registerWorker(this.workerId, this.heartbeatTtlMs, this.info());
        return;
      }
      if (this.state === 'stopping') return;
      if (!alive) await this.resync();
      if (Date.now() - this.lastSweepMs > SWEEP_INTERVAL_MS) {
        this.lastSweepMs = Date.now();
        await reapDeadWorkers(this.ctx());
      }
      for (const slotId of await this.registry.reapLeases(this.workerId)) {
        this.log.info({ slotId }, 'lease expired; resetting slot');
        this.backgroundReset(slotId);
      }
      await this.metrics.publish(this.redis!, this.keys.workerStats(this.workerId), this.heartbeatTtlMs * 2, [...this.slots.values()].filter((s) => s.brokenReason !== undefined).length);
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Our registry entry expired (a long stall, or Redis restarted). Held slots whose record survived keep
   * their holder; free ones are listed again; any other slot gets a pristine container before it is offered.
   */
  private async resync(): Promise<void> {
    this.log.warn('registry entry vanished (Redis restarted, or heartbeats stalled); registering again');
    await this.registry!.registerWorker(this.workerId, this.heartbeatTtlMs, this.info());
    for (const [slotId, state] of await this.registry!.slotStates([...this.slots.keys()])) {
      const slot = this.slots.get(slotId)!;
      if (state === 'held') continue;
      if (state === 'free') await this.registry!.addSlot(slotId, this.workerId, slot.containerId);
      else this.backgroundReset(slotId);
    }
  }

  private backgroundReset(slotId: string): void {
    this.resetSlot(slotId).catch((err: unknown) => this.log.error({ slotId, err: toError(err).message }, 'reset failed'));
  }

  private async process(job: Job): Promise<unknown> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) return rejectInvalidPayload(this.ctx(), job, describeZodError(parsed.error));
    const payload = parsed.data;
    if (payload.kind === 'reset') {
      await this.resetSlot(payload.slotId);
      return { reset: payload.slotId };
    }
    // A batch always gets one result per call: infrastructure trouble becomes retryable INTERNAL results.
    const results = await this.runCalls(payload, job.id ?? '').catch((err: unknown) =>
      payload.items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'INTERNAL', `The worker could not run this call: ${toError(err).message}`)]),
    );
    await replyResults(this.redis!, this.keys.inbox(payload.producerId), job.id ?? '', results);
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
    const startedMs = performance.now();
    let result: ExecutionResult;
    if (slot.workspaceLost) {
      // The container died under the previous call and was replaced: say so before running anything.
      slot.workspaceLost = false;
      result = failure(item, 'SLOT_BROKEN', `This slot's container died and was replaced by a fresh one: the trajectory's workspace (files, processes, shell state) is gone. This call was not run; later calls run on the new container.`, { workspaceLost: true });
    } else {
      try {
        result = await executeCall((req) => slot.run(req), item, this.artifactIo(slot));
      } catch (err) {
        const code = codeOf(err);
        result = failure(item, code, toError(err).message, err instanceof SlotqError ? { retryable: err.retryable } : {});
        // Replace it now, inside the slot's FIFO, so the calls queued behind this one see the new container.
        if (code === 'SLOT_BROKEN') await this.replaceBroken(slot);
      }
    }
    this.events.emit('call:done', { tool: item.tool, slotId: slot.slotId, success: result.success, durationMs: performance.now() - startedMs, ...(result.metadata.code ? { code: result.metadata.code } : {}) });
    log.debug({ tool: item.tool, success: result.success, code: result.metadata.code, ms: result.metadata.durationMs }, 'call done');
    return result;
  }

  /** Container access for the artifact helpers; reads slot.containerId at call time (it changes on reset). */
  private artifactIo(slot: SlotRuntime): ArtifactIo {
    return { exec: (argv, opts) => this.driver.exec(slot.containerId, argv, opts), stream: (argv) => this.driver.attach(slot.containerId, argv) };
  }

  /** Gives a slot a pristine container (a warm spare when there is one), then frees it. */
  async resetSlot(slotId: string): Promise<void> {
    const slot = this.slots.get(slotId);
    if (!slot) return;
    await slot.enqueue(async () => {
      const old = slot.containerId;
      try {
        const fresh = await this.pool!.take();
        if (this.state !== 'running') return void (await this.driver.remove(fresh));
        await slot.attachContainer(fresh);
      } catch (err) {
        this.log.error({ slotId, err: toError(err).message }, 'reset failed: no new container');
        slot.brokenReason = `reset failed: ${toError(err).message}`;
        return;
      } finally {
        this.removeLater(old);
      }
      slot.workspaceLost = false;
      if (this.state === 'running') await this.registry!.addSlot(slotId, this.workerId, slot.containerId);
    });
  }

  /** Removes a container off the slot's path; stop() waits for these removals. */
  private removeLater(containerId: string): void {
    const p: Promise<void> = this.driver
      .remove(containerId)
      .catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'removing an old container failed'))
      .finally(() => this.removals.delete(p));
    this.removals.add(p);
  }

  /** Replaces a dead container; the slot stays leased to its holder, whose next call is told. */
  private async replaceBroken(slot: SlotRuntime): Promise<void> {
    if (slot.brokenReason === undefined || this.state !== 'running') return;
    try {
      const fresh = await this.pool!.take();
      if (this.state !== 'running') return void (await this.driver.remove(fresh));
      const dead = slot.containerId;
      await slot.attachContainer(fresh);
      slot.workspaceLost = true;
      await this.driver.remove(dead);
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
    if (this.registry) await this.registry.drainWorker(this.workerId).catch(() => undefined);
    if (this.bull) {
      const closing = this.bull.close();
      const timedOut = await Promise.race([closing.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), this.drainTimeoutMs).unref())]);
      if (timedOut) {
        this.log.warn('calls still running at the drain deadline; killing their containers');
        await this.bull.close(true).catch(() => undefined);
      }
      await failWaitingJobs(this.ctx()).catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'could not fail waiting jobs'));
    }
    // Let resets and replacements already queued on the slots settle before removing containers.
    const settled = Promise.all([...this.slots.values()].map((slot) => slot.enqueue(() => Promise.resolve())));
    await Promise.race([settled, new Promise((r) => setTimeout(r, this.drainTimeoutMs).unref())]);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const slot of this.slots.values()) slot.close();
    await Promise.all([...this.slots.values()].map((s) => this.driver.remove(s.containerId).catch(() => undefined)));
    await this.pool?.close().catch(() => undefined);
    await Promise.all([...this.removals]);
    if (this.registry) await this.registry.unregisterWorker(this.workerId).catch(() => undefined);
    await this.bull?.disconnect().catch(() => undefined);
    this.redis?.disconnect();
    this.state = 'stopped';
    this.log.info('worker stopped');
  }
}
