import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadConfig, runtimeFor, type SlotqConfig, type SlotqOptions } from '../shared/config.js';
import { InternalError, toError } from '../shared/errors.js';
import { newWorkerId } from '../shared/ids.js';
import { keysFor, type Keys } from '../shared/keys.js';
import { silentLogger } from '../shared/logger.js';
import { connectRedis, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry/registry.js';
import type { ContainerDriver, ContainerSpec } from './engine/container-driver.js';
import { ContainerPool } from './engine/container-pool.js';
import { channelSubdir, slotContainerSpec } from './engine/container-spec.js';
import { DeadWorkerReaper, queueDropper } from './lifecycle/dead-worker-reaper.js';
import { DockerDriver } from './engine/docker-driver.js';
import { loadImageSettings, type ImageOptions, type ImageSettings } from './images/image-options.js';
import { profileImage } from './engine/image-profile.js';
import type { RootfsGuard } from './lifecycle/rootfs-guard.js';
import { planRootfs, startRootfsGuard, type RootfsPlan } from './lifecycle/rootfs-plan.js';
import { ImageSlots } from './images/image-slots.js';
import { JobProcessor } from './queue/job-processor.js';
import { checkRuntime } from './engine/runtime-check.js';
import { Liveness, type WorkerPhase } from './lifecycle/liveness.js';
import { SlotResetter } from './lifecycle/slot-resetter.js';
import { SlotRuntime, offerOf } from './lifecycle/slot-runtime.js';
import type { SlotOffer } from './tools/slot-access.js';
import { SlotSet } from './lifecycle/slot-set.js';
import type { WorkerEventMap } from './worker-events.js';
import { WorkerMetrics } from './worker-metrics.js';
import { WorkerQueue } from './queue/worker-queue.js';

export interface SlotWorkerOptions extends SlotqOptions, ImageOptions {
  workerId?: string;
  driver?: ContainerDriver;
  logger?: Logger;
}

/** What start() wires; stop() takes down whatever of it exists. */
interface WiredParts {
  redis: Redis;
  registry: Registry;
  pool?: ContainerPool;
  resetter?: SlotResetter<SlotRuntime>;
  liveness?: Liveness<SlotRuntime>;
  queue?: WorkerQueue;
  images?: ImageSlots;
  rootfs?: RootfsGuard<SlotRuntime>;
}

/**
 * Owns a set of container slots: creates them, registers them in Redis, executes the jobs of its own
 * queue (FIFO per slot, slots in parallel), resets slots, and cleans everything up on stop. A composition
 * root: the work is done by the parts it wires (slot-set, slot-resetter, liveness, dead-worker-reaper,
 * worker-queue, job-processor).
 */
export class SlotWorker {
  readonly workerId: string;
  readonly config: SlotqConfig;
  readonly keys: Keys;
  readonly slots = new Map<string, SlotRuntime>();
  /** `call:done`, `container:created`, `container:failed` (see worker-events.ts). */
  readonly events = new EventEmitter<WorkerEventMap>();
  private readonly metrics = new WorkerMetrics(this.events);
  private readonly log: Logger;
  private readonly driver: ContainerDriver;
  private readonly drainTimeoutMs: number;
  private readonly slotSet: SlotSet<SlotRuntime>;
  /** Per-trajectory images: SLOTQ_IMAGES, SLOTQ_ONDEMAND_SLOTS, SLOTQ_WARM_PER_IMAGE, ... */
  readonly imageSettings: ImageSettings;
  private phase: WorkerPhase = 'idle';
  /** The image's shells, from its profile at start. */
  private offer: SlotOffer = { sh: '', stateful: '', tmux: '', networkIsolated: true, user: '', uid: 0 };
  /** How SLOTQ_ROOTFS_MB is enforced here (decided at start). */
  private rootfsPlan: RootfsPlan = { kind: 'off' };
  private parts: WiredParts | undefined;

  constructor(opts: SlotWorkerOptions = {}) {
    this.config = loadConfig(opts);
    this.workerId = opts.workerId ?? newWorkerId();
    this.keys = keysFor(this.config.prefix);
    this.imageSettings = loadImageSettings(this.config.image, opts);
    this.driver = opts.driver ?? new DockerDriver();
    this.drainTimeoutMs = this.config.drainTimeoutMs;
    this.log = (opts.logger ?? silentLogger()).child({ workerId: this.workerId });
    this.slotSet = new SlotSet(this.slots, this.driver, (slotId, containerId) => this.newSlot(slotId, containerId), this.log);
  }

  get queueName(): string {
    return this.keys.queueName(this.workerId);
  }

  async start(): Promise<void> {
    if (this.phase !== 'idle') throw new InternalError(`SlotWorker.start() called in state ${this.phase}`);
    this.phase = 'starting';
    const t0 = Date.now();
    try {
      const spec = await this.containerSpec();
      const redis = connectRedis(this.config, { name: `slotq-worker-${this.workerId}` });
      const p: WiredParts = (this.parts = { redis, registry: new Registry(redis, this.keys) });
      await verifyRedis(redis, this.config.redisUrl);
      const running = (): boolean => this.phase === 'running';
      const listAsFree = async (s: SlotRuntime): Promise<void> => void (await p.registry.addSlot(s.slotId, this.workerId, s.containerId, p.images?.imageOf(s.slotId)));
      const reaper = new DeadWorkerReaper({ workerId: this.workerId, prefix: this.config.prefix, registry: p.registry, driver: this.driver, dropQueue: queueDropper(redis, this.keys), log: this.log, ...(this.config.channel === 'fifo' ? { channelDir: this.config.channelDir } : {}) });
      await reaper.sweep();
      p.pool = new ContainerPool(this.driver, spec, this.config.warmSpares, this.config.maxConcurrentCreates, this.log, this.events);
      const registryState = async (slotId: string): Promise<string | null> => (await p.registry.slotStates([slotId])).get(slotId) ?? null;
      const resetter = (p.resetter = new SlotResetter({ slots: this.slots, containers: p.pool, driver: this.driver, listAsFree, running, registryState, log: this.log }));
      const onContainerGone = (slot: SlotRuntime): Promise<void> => this.replaceGone(slot);
      const images = (p.images = new ImageSlots({ workerId: this.workerId, config: this.config, settings: this.imageSettings, driver: this.driver, registry: p.registry, redis, keys: this.keys, slots: this.slots, running, onContainerGone, log: this.log }));
      const resetInBackground = (slotId: string): void => (images.owns(slotId) ? images.retireInBackground(slotId) : resetter.resetInBackground(slotId));
      const heartbeatTtlMs = Math.max(1000, Math.round(this.config.workerLostMs * 0.7));
      const housekeeping = async (): Promise<void> => {
        await reaper.sweepIfDue();
        for (const slotId of await p.registry.reapLeases(this.workerId)) {
          this.log.info({ slotId }, 'lease expired; resetting slot');
          resetInBackground(slotId);
        }
        // A slot left `resetting` with no reset under way (its producer died before sending the job): reset
        // it (an on-demand one is retired). Both are idempotent, so a reset job still on its way does no harm.
        for (const slotId of resetter.stranded(await p.registry.slotStates([...this.slots.keys()]))) {
          this.log.warn({ slotId }, 'slot left resetting with no reset under way; resetting it');
          resetInBackground(slotId);
        }
        await this.metrics.publish(redis, this.keys.workerStats(this.workerId), heartbeatTtlMs * 2, this.slotSet.brokenCount());
        await images.republish();
      };
      const info = (): Record<string, string | number> => ({ host: hostname(), pid: process.pid, slots: this.config.slots, queue: this.queueName, image: this.config.image, ondemandSlots: this.imageSettings.ondemandSlots, runtime: runtimeFor(this.config, this.config.image), startedAtMs: t0, state: 'up' });
      p.liveness = new Liveness({ workerId: this.workerId, registry: p.registry, heartbeatTtlMs, phase: () => this.phase, info, slots: this.slots, listAsFree, resetInBackground, housekeeping, log: this.log });
      await p.liveness.register();
      p.liveness.start(); // heartbeats from here on: creating many containers can take longer than the heartbeat's TTL
      await this.slotSet.createAll(Array.from({ length: this.config.slots }, (_, i) => `${this.workerId}-s${i}`), p.pool);
      if (this.rootfsPlan.kind === 'watcher') p.rootfs = await startRootfsGuard(this.driver, this.rootfsPlan, this.config, this.slots, (slot, told) => this.discardLayer(slot, told), this.log);
      const liveness = p.liveness;
      p.queue = new WorkerQueue(this.workerId, this.config, this.keys, redis, this.log, () => liveness.epoch);
      const processor = new JobProcessor({ workerId: this.workerId, slots: this.slots, liveness, redis, keys: this.keys, driver: this.driver, resetter, images, events: this.events, log: this.log, probes: p.queue.probes, replyChunkBytes: this.config.replyChunkBytes, ...(p.rootfs ? { rootfs: p.rootfs } : {}) });
      await p.queue.start((job) => processor.process(job), this.config.slots + this.imageSettings.ondemandSlots);
      for (const slot of this.slots.values()) await listAsFree(slot);
      p.pool.refill();
      this.phase = 'running';
      await images.discover();
      await images.publish(this.imageSettings.ondemandSlots); // from here on, acquires with an image may pick this worker
      this.log.info({ slots: this.slots.size, queue: this.queueName, ms: Date.now() - t0 }, 'worker started');
    } catch (err) {
      this.log.error({ err: toError(err).message }, 'worker failed to start');
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  /** What the slot containers are made from: the image pulled if needed and profiled (its user, its shells). */
  private async containerSpec(): Promise<ContainerSpec> {
    await this.driver.ping();
    const base = slotContainerSpec(this.config, this.workerId);
    const offered = await this.driver.runtimes();
    for (const runtime of new Set([base.runtime, ...Object.values(this.config.runtimeByImage)])) checkRuntime(offered, runtime, base.network);
    const profile = await profileImage(this.driver, this.config, base, this.log);
    this.rootfsPlan = await planRootfs(this.driver, this.config, base.labels, this.log);
    this.offer = offerOf(profile, this.config.network);
    return slotContainerSpec(this.config, this.workerId, profile);
  }

  private newSlot(slotId: string, containerId: string): SlotRuntime {
    const slot = new SlotRuntime(slotId, containerId, this.driver, this.offer, this.log.child({ slotId }));
    slot.onContainerGone = (s) => this.replaceGone(s);
    return slot;
  }

  /**
   * A slot's container died while no call ran (inside the slot's FIFO): it gets a new one now. Its holder's
   * next call is told the workspace is gone; a free slot has no holder to tell.
   */
  private async replaceGone(slot: SlotRuntime): Promise<void> {
    const p = this.parts;
    if (!p || this.phase !== 'running') return;
    // Asked before the replacement: whoever acquires the slot meanwhile gets the new container from the start.
    const state = (await p.registry.slotStates([slot.slotId]).catch(() => undefined))?.get(slot.slotId);
    await (p.images?.owns(slot.slotId) ? p.images.replaceBroken(slot) : p.resetter?.replaceBroken(slot));
    if (state === 'free' && slot.brokenReason === undefined) slot.workspaceLost = false;
  }

  /**
   * A slot's writable layer went past SLOTQ_ROOTFS_MB in one go (fallocate): its container goes now, so the
   * host gets its disk back, and the slot gets a new one. told: the call's own result says so already.
   */
  private async discardLayer(slot: SlotRuntime, told: boolean): Promise<void> {
    const p = this.parts;
    slot.brokenReason = "the slot's writable layer went past SLOTQ_ROOTFS_MB; it is being replaced";
    slot.lostCause = 'disk_full';
    await this.driver.remove(slot.containerId).catch((err: unknown) => this.log.warn({ slotId: slot.slotId, err: toError(err).message }, 'removing a container over its rootfs cap failed'));
    await (p?.images?.owns(slot.slotId) ? p.images.replaceBroken(slot) : p?.resetter?.replaceBroken(slot));
    if (told) slot.workspaceLost = false;
  }

  /** Gives a slot a pristine container (a warm spare when there is one), then frees it. */
  async resetSlot(slotId: string): Promise<void> {
    await this.parts?.resetter?.reset(slotId);
  }

  /**
   * Stops taking jobs, lets calls in flight finish (up to drainTimeoutMs), tells producers about jobs
   * that never ran, removes the containers and the registry entries.
   */
  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return;
    this.phase = 'stopping';
    const p = this.parts;
    if (p) await p.registry.drainWorker(this.workerId).catch(() => undefined);
    await p?.queue?.drain(this.drainTimeoutMs);
    // Let resets and replacements already queued on the slots settle before removing containers.
    await this.slotSet.settle(this.drainTimeoutMs);
    await p?.images?.drained(this.drainTimeoutMs);
    p?.liveness?.stop();
    p?.rootfs?.stop();
    await this.slotSet.removeAll();
    await p?.pool?.close().catch(() => undefined);
    await p?.resetter?.drained();
    // Its containers' channel directories went with them: their parent goes too.
    if (this.config.channel === 'fifo') await rm(`${this.config.channelDir}/${channelSubdir(this.workerId)}`, { recursive: true, force: true }).catch(() => undefined);
    if (p) await p.registry.unregisterWorker(this.workerId).catch(() => undefined);
    // Its queue goes with it (jobs that never ran were failed above): no keys left behind per worker.
    if (p) await queueDropper(p.redis, this.keys)(this.workerId).catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'could not remove the worker queue'));
    await p?.queue?.disconnect();
    p?.redis.disconnect();
    this.phase = 'stopped';
    this.log.info('worker stopped');
  }
}
