import { pushInbox } from '../../shared/inbox-push.js';
import type { Redis } from 'ioredis';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../../shared/config.js';
import { settlesWithin } from '../../shared/deadline.js';
import { ImageUnusableError, SlotqError, SlotUnavailableError, toError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import type { Registry } from '../../shared/registry/registry.js';
import { PULL_PROGRESS_LUA } from '../../shared/registry/registry-image-lua.js';
import type { InboxMessage } from '../../shared/calls/schemas.js';
import type { ContainerDriver } from '../engine/container-driver.js';
import { imageAllowed, type ImageSettings } from './image-options.js';
import { imageCacheFor, type ImageCache } from './image-cache.js';
import { ImagePreparer } from './image-prepare.js';
import { SlotRuntime } from '../lifecycle/slot-runtime.js';
import type { SlotOffer } from '../tools/slot-access.js';

export interface ImageSlotsDeps {
  workerId: string;
  config: SlotqConfig;
  settings: ImageSettings;
  driver: ContainerDriver;
  registry: Registry;
  redis: Redis;
  keys: Keys;
  /** The worker's slots: on-demand ones are added and removed here (the job processor runs their calls). */
  slots: Map<string, SlotRuntime>;
  running: () => boolean;
  /** Given to each slot made here (SlotRuntime.onContainerGone). */
  onContainerGone?: (slot: SlotRuntime) => Promise<void>;
  log: Logger;
}


/**
 * A worker's on-demand slots (acquire with `image`): creates a container of the image for a waiter (its
 * slot goes to the image's first waiter), and on release removes it, refills it for the next waiter of the
 * image, or keeps it warm (SLOTQ_WARM_PER_IMAGE). Capacity (SLOTQ_ONDEMAND_SLOTS) is accounted in the registry.
 */
export class ImageSlots {
  /** slotId → image, for the slots this class made. */
  private readonly owned = new Map<string, string>();
  private readonly work = new Set<Promise<void>>();
  /** Caps concurrent container creations (SLOTQ_MAX_CONCURRENT_CREATES). */
  private readonly limit: LimitFunction;
  readonly images: ImagePreparer;
  private readonly cache: ImageCache;
  private seq = 0;
  /** Allowed images (exact names) found on the engine at start: held locally before any request. */
  private readonly found = new Set<string>();
  /** Images a container is being made of right now (never evicted). */
  private readonly making = new Map<string, number>();

  constructor(private readonly deps: ImageSlotsDeps) {
    this.limit = pLimit(deps.config.maxConcurrentCreates);
    this.images = new ImagePreparer(deps.driver, deps.config, deps.workerId, deps.settings.pullTimeoutS * 1000, deps.log, () => {
      void this.publish();
      this.track(this.cache.trim());
    }, (image, status) => void this.showPull(image, status));
    this.cache = imageCacheFor(deps.driver, deps.settings.imageCacheGb, {
      preparer: this.images,
      inUse: () => this.inUse(),
      forget: (image) => this.forgetImage(image),
      log: deps.log,
    });
  }

  owns(slotId: string): boolean {
    return this.owned.has(slotId);
  }
  imageOf(slotId: string): string {
    return this.owned.get(slotId) ?? '';
  }
  /** Images a container of this worker runs (never evicted). */
  inUse(): Set<string> {
    return new Set([this.deps.config.image, ...this.owned.values(), ...this.making.keys()]);
  }

  /** The image was removed from the engine (the cache evicted it): no longer published as held. */
  forgetImage(image: string): void {
    this.found.delete(image);
    this.images.forget(image);
    void this.publish();
  }

  /** Finds the allowed images (exact names) already on the engine, so placement knows them from the start. */
  async discover(): Promise<void> {
    for (const image of this.deps.settings.allow) {
      if (!/[*?]/.test(image) && (await this.deps.driver.inspectImage(image).catch(() => undefined))) this.found.add(image);
    }
  }

  /** Tells the registry which images this worker holds and allows (SLOTQ_IMAGES), and when given its on-demand capacity. */
  async publish(capacity?: number, onlyIfMissing = false): Promise<void> {
    const held = [this.deps.config.image, ...this.found, ...this.images.ready.keys()];
    await this.deps.registry.publishImages(this.deps.workerId, [...new Set(held)], capacity, onlyIfMissing, this.deps.settings.allow).catch((err: unknown) => this.deps.log.warn({ err: toError(err).message }, 'publishing local images failed'));
  }

  /**
   * Every heartbeat round: publishes again, and the free capacity when the registry forgot it (Redis restarted);
   * reclaims reservations whose provision job never came, and serves requests waiting for capacity.
   */
  async republish(): Promise<void> {
    await this.publish(Math.max(0, this.deps.settings.ondemandSlots - this.owned.size), true);
    if (!this.deps.running()) return;
    for (const r of await this.deps.registry.claimPending(this.deps.workerId, this.deps.settings.reservationReclaimMs)) this.serve(r.image, r.waiterId);
  }

  /** Pull progress in the worker's registry entry (`pulling`), which the board shows; never creates the entry. */
  private async showPull(image: string, status: string | undefined): Promise<void> {
    const key = this.deps.keys.worker(this.deps.workerId);
    await this.deps.redis.eval(PULL_PROGRESS_LUA, 1, key, 'pulling', status === undefined ? '' : `${image}: ${status}`.slice(0, 200)).catch(() => undefined);
  }

  /** A provision job: takes the capacity the acquire reserved, then creates a container of the image for the waiter, in the background. */
  provision(image: string, waiterId: string): void {
    const take = this.deps.registry.takeReservation(this.deps.workerId, waiterId).then(
      () => undefined,
      // Made anyway (the waiter needs it); its reservation is reclaimed later, one container over the capacity meanwhile.
      (err: unknown) => this.deps.log.warn({ image, waiterId, err: toError(err).message }, 'could not take the reservation of a provision job'),
    );
    this.track(take.then(() => this.create(image, waiterId)));
  }

  /** Creates a container for a waiter whose capacity a registry script of this worker claimed (no job, nothing to take). */
  private serve(image: string, waiterId: string): void {
    this.track(this.create(image, waiterId));
  }

  private async create(image: string, waiterId: string): Promise<void> {
    const slotId = `${this.deps.workerId}-i${++this.seq}`;
    try {
      if (!imageAllowed(this.deps.settings.allow, image)) {
        throw new ImageUnusableError(`image ${image} is refused by worker ${this.deps.workerId}: it is not in SLOTQ_IMAGES (allowed: ${this.deps.settings.allow.join(', ')})`);
      }
      await this.newContainer(image, (containerId, offer) => {
        // Synchronously, while the image still counts as being made: the cache never sees it unused.
        const slot = new SlotRuntime(slotId, containerId, this.deps.driver, offer, this.deps.log.child({ slotId, image }));
        slot.onContainerGone = this.deps.onContainerGone;
        this.deps.slots.set(slotId, slot);
        this.owned.set(slotId, image);
      });
      const slot = this.deps.slots.get(slotId)!;
      await slot.openSession();
      this.deps.log.info({ slotId, image }, 'on-demand slot ready');
      await this.offer(slot, image);
    } catch (err) {
      const slot = this.deps.slots.get(slotId);
      if (slot) {
        slot.close();
        this.deps.slots.delete(slotId);
        this.owned.delete(slotId);
        await this.deps.driver.remove(slot.containerId).catch(() => undefined);
      }
      // A stopping worker's requests already wait for another worker (the drain gave them back).
      if (this.deps.running()) await this.fail(image, waiterId, err);
      else this.deps.log.info({ image, waiterId }, 'worker stopping: the request goes to another worker');
    }
  }

  /** A container of the image (got is called with it before the image stops counting as being made). */
  private async newContainer(image: string, got: (containerId: string, offer: SlotOffer) => void = () => undefined): Promise<string> {
    this.making.set(image, (this.making.get(image) ?? 0) + 1);
    try {
      const made = await this.makeContainer(image);
      got(made.id, made.offer);
      return made.id;
    } finally {
      const n = (this.making.get(image) ?? 1) - 1;
      if (n > 0) this.making.set(image, n);
      else this.making.delete(image);
    }
  }

  private async makeContainer(image: string): Promise<{ id: string; offer: SlotOffer }> {
    const prepared = await this.images.prepare(image);
    if (!this.deps.running()) throw new SlotUnavailableError(`worker ${this.deps.workerId} is stopping`);
    const id = await this.limit(() => this.deps.driver.create(prepared.spec));
    if (this.deps.running()) return { id, offer: prepared.offer };
    await this.deps.driver.remove(id).catch(() => undefined);
    throw new SlotUnavailableError(`worker ${this.deps.workerId} is stopping`);
  }

  /** Registers the slot: its image's first waiter gets it; a free one beyond the warm count is retired. */
  private async offer(slot: SlotRuntime, image: string): Promise<void> {
    await this.trimIfSpare(slot, await this.list(slot, image));
  }

  /** Registers the slot with its image: its first waiter gets it, else it is free (warm). */
  private async list(slot: SlotRuntime, image: string): Promise<string> {
    const ready = this.images.ready.get(image);
    if (ready) ready.usedAtMs = Date.now();
    return this.deps.registry.addSlot(slot.slotId, this.deps.workerId, slot.containerId, image);
  }

  /** A slot that went free (no waiter) beyond the image's warm count is retired. */
  private async trimIfSpare(slot: SlotRuntime, outcome: string): Promise<void> {
    if (outcome === 'free' && (await this.deps.registry.trimImageSlot(this.deps.workerId, slot.slotId, this.deps.settings.warmPerImage))) await this.retire(slot.slotId);
  }

  /** Tells the waiter (or its image's first one) why no container came, and gives the capacity to the next request. */
  private async fail(image: string, waiterId: string, err: unknown): Promise<void> {
    const e = err instanceof SlotqError ? err : new SlotUnavailableError(`worker ${this.deps.workerId} could not make a container of image ${image} (${toError(err).message}): retry`);
    this.deps.log.warn({ image, waiterId, code: e.code, err: e.message }, 'on-demand slot not made');
    try {
      const r = await this.deps.registry.failImageWaiter(this.deps.workerId, image, waiterId);
      if (r.producerId) {
        const msg: InboxMessage = { t: 'refused', waiterId: r.waiterId, code: e.code, message: e.message, retryable: e.retryable };
        await pushInbox(this.deps.redis, this.deps.keys.inbox(r.producerId), JSON.stringify(msg));
      }
      if (r.next && this.deps.running()) this.serve(r.next.image, r.next.waiterId);
    } catch (e2) {
      this.deps.log.error({ image, err: toError(e2).message }, 'could not tell a waiter its image failed');
    }
  }

  /** A released (or expired) on-demand slot: its container goes; the slot is refilled, kept warm or removed. */
  async retire(slotId: string, force = false): Promise<void> {
    const slot = this.deps.slots.get(slotId);
    const image = this.owned.get(slotId);
    if (!slot || !image) return;
    const refilled = await slot.enqueue(async () => {
      // Idempotent: a late duplicate (a re-delivered reset job, the sweep) finds the slot served meanwhile.
      if (!this.owned.has(slotId)) return false; // retired and removed by an earlier one
      const state = (await this.deps.registry.slotStates([slotId])).get(slotId);
      if (state === 'free' || state === 'held') return false;
      slot.close();
      await this.deps.driver.remove(slot.containerId).catch((err: unknown) => this.deps.log.warn({ slotId, err: toError(err).message }, 'removing an on-demand container failed'));
      if (!this.deps.running()) return false;
      const r = await this.deps.registry.retireImageSlot(this.deps.workerId, slotId, force ? -1 : this.deps.settings.warmPerImage);
      if (r.next === 'refill') {
        try {
          await slot.attachContainer(await this.newContainer(image));
          slot.workspaceLost = false;
        } catch (err) {
          this.deps.log.error({ slotId, image, err: toError(err).message }, 'refilling an on-demand slot failed; removing it');
          return 'retry' as const;
        }
        // Listed inside the FIFO: a second retire queued meanwhile (the stranded-slot sweep) finds it served.
        return this.deps.running() ? { listed: await this.list(slot, image) } : false;
      }
      this.deps.slots.delete(slotId);
      this.owned.delete(slotId);
      if (r.next === 'provision') this.serve(r.image, r.waiterId);
      this.track(this.cache.trim());
      return false;
    });
    if (refilled === 'retry') await this.retire(slotId, true);
    else if (refilled) await this.trimIfSpare(slot, refilled.listed);
  }

  retireInBackground(slotId: string): void {
    this.track(this.retire(slotId));
  }

  /** Replaces a dead on-demand container (inside the slot's FIFO); the holder keeps the slot and is told. */
  async replaceBroken(slot: SlotRuntime): Promise<void> {
    const image = this.owned.get(slot.slotId);
    if (!image || slot.brokenReason === undefined || !this.deps.running()) return;
    try {
      const dead = slot.containerId;
      await slot.attachContainer(await this.newContainer(image));
      slot.workspaceLost = true;
      await this.deps.driver.remove(dead).catch(() => undefined);
    } catch (err) {
      this.deps.log.error({ slotId: slot.slotId, err: toError(err).message }, 'replacing a dead on-demand container failed');
    }
  }

  /** Waits (at most ms) for creations and retirements in flight. */
  async drained(ms: number): Promise<void> {
    await settlesWithin(Promise.all([...this.work]), ms);
  }

  private track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => this.deps.log.error({ err: toError(err).message }, 'on-demand slot work failed')).finally(() => this.work.delete(t));
    this.work.add(t);
  }
}
