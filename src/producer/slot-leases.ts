import type { Logger } from 'pino';
import { InvalidArgsError, SlotqError, SlotUnavailableError, toError, type ErrorCode } from '../shared/errors.js';
import { IMAGE_REF } from '../shared/registry/image-keys.js';
import { withDeadline } from '../shared/deadline.js';
import { randomId } from '../shared/ids.js';
import type { Registry, SlotRecord } from '../shared/registry/registry.js';
import { WORKSPACE_DIR, slotSchema, type Slot } from '../shared/calls/schemas.js';

const toSlot = (r: SlotRecord): Slot => slotSchema.parse(fromRecord(r));
const fromRecord = (r: SlotRecord): Record<string, unknown> => ({
    slotId: r['slotId'],
    workerId: r['workerId'],
    containerId: r['containerId'] ?? '',
    workspaceDir: WORKSPACE_DIR,
    trajectoryId: r['trajectoryId'],
    leaseId: r['leaseId'],
    acquiredAtMs: Number(r['heldAtMs'] ?? Date.now()),
});

const GRANT_IN_FLIGHT_MS = 5000;

interface Waiter {
  resolve: (slot: Slot) => void;
  reject: (err: Error) => void;
}

/**
 * The slots one producer holds: acquisition with trajectory affinity (also within this process), FIFO
 * waiting through the registry, grants arriving in the inbox, and lease renewal.
 */
export class SlotLeases {
  private readonly held = new Map<string, Slot>();
  private readonly acquiring = new Map<string, Promise<Slot>>();
  private readonly waiters = new Map<string, Waiter>();
  /** The image each held or acquiring trajectory asked for ('' = the workers' own pools). */
  private readonly images = new Map<string, string>();

  constructor(
    private readonly registry: Registry,
    private readonly producerId: string,
    /** The owner scope of this producer's trajectory IDs (affinityScope: its namespace, else its own ID). */
    private readonly scope: string,
    private readonly leaseTtlMs: number,
    private readonly log: Logger,
    /** Asks a worker to create a container of the image for a waiter (a provision job), or to remove a warm one (a reset job). */
    private readonly workerJobs: { provision(workerId: string, image: string, waiterId: string): Promise<void>; reset(workerId: string, slotId: string): Promise<void> } = { provision: () => Promise.resolve(), reset: () => Promise.resolve() },
  ) {}

  /** image: the trajectory's own image (on-demand containers); undefined for the workers' own pools. */
  acquire(trajectoryId: string, timeoutMs: number, image?: string): Promise<Slot> {
    if (image !== undefined && !IMAGE_REF.test(image)) return Promise.reject(new InvalidArgsError(`acquire: image ${JSON.stringify(image)} is not an image reference (name[:tag][@digest], no spaces)`));
    const asked = this.images.get(trajectoryId);
    if (image !== undefined && asked !== undefined && asked !== image && (this.held.has(trajectoryId) || this.acquiring.has(trajectoryId))) {
      return Promise.reject(new InvalidArgsError(`trajectory ${trajectoryId} holds a slot of ${asked ? `image ${asked}` : "the workers' own image"} and cannot acquire image ${image} while holding it: release it first`));
    }
    const mine = this.held.get(trajectoryId);
    if (mine) return Promise.resolve(mine);
    const inFlight = this.acquiring.get(trajectoryId);
    if (inFlight) return inFlight;
    this.images.set(trajectoryId, image ?? '');
    const p = this.acquireNew(trajectoryId, timeoutMs, image).finally(() => {
      this.acquiring.delete(trajectoryId);
      if (!this.held.has(trajectoryId)) this.images.delete(trajectoryId);
    });
    this.acquiring.set(trajectoryId, p);
    return p;
  }

  private async acquireNew(trajectoryId: string, timeoutMs: number, image?: string): Promise<Slot> {
    const waiterId = `${this.producerId}-${randomId(6)}`;
    const granted = new Promise<Slot>((resolve, reject) => this.waiters.set(waiterId, { resolve, reject }));
    granted.catch(() => undefined); // observed below, or rejected by cancelAll after a timeout
    try {
      const slot = await this.acquireAs(waiterId, granted, trajectoryId, timeoutMs, image);
      this.held.set(trajectoryId, slot);
      return slot;
    } finally {
      // Whatever happened (slot, timeout, Redis error), this waiter is done: nothing stays behind.
      this.waiters.delete(waiterId);
    }
  }

  private async acquireAs(waiterId: string, granted: Promise<Slot>, trajectoryId: string, timeoutMs: number, image?: string): Promise<Slot> {
    const leaseId = randomId(8);
    let rec: SlotRecord | null;
    let why = 'start more workers (SLOTQ_SLOTS) or release slots sooner';
    try {
      const a = { trajectoryId, owner: this.producerId, scope: this.scope, leaseId, ttlMs: this.leaseTtlMs, waiterId, waiterTtlMs: timeoutMs + 5000 };
      if (image === undefined) rec = await this.registry.acquire(a);
      else {
        const r = await this.registry.acquireImage({ ...a, image });
        if ('refused' in r) throw new InvalidArgsError(`image ${image} is refused by every worker: it is not in their SLOTQ_IMAGES (the images or patterns a worker serves)`);
        if ('other' in r) throw new InvalidArgsError(`trajectory ${trajectoryId} holds slot ${r.other['slotId']} of ${r.other['image'] ? `image ${r.other['image']}` : "the workers' own image"} and cannot acquire image ${image} while holding it: release it first`);
        const wait = 'wait' in r ? r.wait : '';
        rec = 'slot' in r ? r.slot : null;
        const asked = wait ? this.workerJobs.provision(wait, image, waiterId) : 'evict' in r && r.evict ? this.workerJobs.reset(r.evict.workerId, r.evict.slotId) : undefined;
        asked?.catch((err: unknown) => this.log.warn({ err: toError(err).message, image }, 'could not ask a worker for a container'));
        why = wait
          ? `worker ${wait} was still making a container of image ${image} (pulling or probing it), or it went to an earlier waiter of that image; retry, or allow more time`
          : `no worker had on-demand capacity left for image ${image} (raise SLOTQ_ONDEMAND_SLOTS, start workers, or release slots of on-demand images sooner)`;
      }
    } catch (err) {
      if (err instanceof InvalidArgsError) throw err;
      // The script may have queued the waiter before its reply was lost: withdraw it (capacity it reserved
      // for a provision job never sent comes back when the worker reclaims it).
      await this.registry.cancelWaiter(waiterId).catch(() => undefined);
      throw err;
    }
    if (rec) return toSlot(rec);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const first = await Promise.race([granted, timedOut]).finally(() => clearTimeout(timer));
    if (first !== 'timeout') return first;
    if (await this.registry.cancelWaiter(waiterId)) {
      throw new SlotUnavailableError(`No slot became free within ${timeoutMs} ms for trajectory ${trajectoryId}: ${why}`);
    }
    // A timeout that lost the race to a grant: the registry has it (even if its inbox message got lost).
    const won = await this.registry.grantedTo({ trajectoryId, owner: this.producerId, scope: this.scope, leaseId });
    if (won) return toSlot(won);
    return withDeadline(granted, GRANT_IN_FLIGHT_MS, () => new SlotUnavailableError(`No slot within ${timeoutMs} ms for trajectory ${trajectoryId}, and a grant that raced the timeout never arrived`));
  }

  /** A slot granted to one of our waiters (pushed to the inbox by the registry). */
  onGrant(waiterId: string, rec: SlotRecord): void {
    const waiter = this.waiters.get(waiterId);
    if (!waiter) {
      this.log.warn({ waiterId }, 'grant for an unknown waiter; its lease will expire');
      return;
    }
    this.waiters.delete(waiterId);
    const parsed = slotSchema.safeParse(fromRecord(rec));
    if (parsed.success) waiter.resolve(parsed.data);
    else waiter.reject(new SlotUnavailableError(`The registry granted a slot record that is not valid (${parsed.error.issues[0]?.message ?? ''}): acquire again`));
  }

  /** An acquire with image that a worker could not serve (image refused or unusable, a pull timed out). */
  onRefused(waiterId: string, code: ErrorCode, message: string, retryable: boolean): void {
    this.waiters.get(waiterId)?.reject(new SlotqError(code, message, { retryable }));
    this.waiters.delete(waiterId);
  }

  forget(slot: Slot): void {
    if (this.held.get(slot.trajectoryId)?.leaseId !== slot.leaseId) return;
    this.held.delete(slot.trajectoryId);
    this.images.delete(slot.trajectoryId);
  }

  /** Acquires waiting for a grant in this process (bounded: each one ends with a slot, a timeout or an error). */
  get waiterCount(): number {
    return this.waiters.size;
  }

  heldSlots(): Slot[] {
    return [...this.held.values()];
  }

  /** Extends every lease; drops the ones the registry says are lost. Never throws. */
  async renew(): Promise<void> {
    if (this.held.size === 0) return;
    try {
      const snapshot = new Map(this.heldSlots().map((s) => [s.slotId, s.leaseId]));
      const lost = new Set(await this.registry.renew(this.leaseTtlMs, [...snapshot]));
      for (const [tid, s] of this.held) {
        // Compare the lease too: the trajectory may have re-acquired the same slot meanwhile.
        if (!lost.has(s.slotId) || snapshot.get(s.slotId) !== s.leaseId) continue;
        this.held.delete(tid);
        this.images.delete(tid);
        this.log.warn({ slotId: s.slotId, trajectoryId: tid }, 'lease lost');
      }
    } catch (err) {
      this.log.warn({ err: toError(err).message }, 'lease renewal failed');
    }
  }

  /** Withdraws every waiter from the registry and rejects its acquire. */
  async cancelAll(err: Error): Promise<void> {
    for (const [id, waiter] of this.waiters) {
      await this.registry.cancelWaiter(id).catch(() => undefined);
      waiter.reject(err);
    }
    this.waiters.clear();
  }
}
