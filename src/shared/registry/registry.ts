import type { Redis } from 'ioredis';
import { affinityKey, affinityScope } from './affinity.js';
import { randomId } from '../ids.js';
import { REGISTRY_SCRIPTS } from './registry-scripts.js';
import type { Keys } from '../keys.js';
import { INBOX_TTL_MS } from '../retention.js';

type ScriptName = keyof typeof REGISTRY_SCRIPTS;
type Runner = (keys: string[], ...args: Array<string | number>) => Promise<unknown>;

/** A slot record as stored in Redis (all values strings), with its slotId. */
export type SlotRecord = Record<string, string>;
export type ReleaseOutcome = 'gone' | 'lost' | 'resetting' | 'free' | 'granted' | 'parked';

/**
 * What an acquire asks for. scope: the owner scope of the trajectory ID (affinityScope: the producer's
 * namespace, or by default its own ID, `owner`); only a producer of the same scope gets the slot back.
 */
export interface AcquireArgs {
  trajectoryId: string;
  owner: string;
  scope?: string;
  leaseId: string;
  ttlMs: number;
}
const affinityOf = (a: Pick<AcquireArgs, 'trajectoryId' | 'owner' | 'scope'>): string => affinityKey(a.scope ?? affinityScope(a.owner), a.trajectoryId);

/** JSON slot record → all-string record (cjson may hand numbers back). */
function toRecord(json: string): SlotRecord {
  const raw = JSON.parse(json) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, String(v)]));
}

/**
 * Typed access to the registry's Lua scripts (loaded once per connection, run by EVALSHA). Every key a
 * script touches is passed in KEYS, from keys.ts; grants the scripts hand back are delivered to the
 * waiting producers' inboxes here.
 */
export class Registry {
  private readonly run: Record<ScriptName, Runner>;

  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
  ) {
    const [registryKeyCount, workerKeyCount] = [keys.registryKeys().length, keys.workerKeys('').length];
    for (const [name, { lua, perWorker, once }] of Object.entries(REGISTRY_SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: registryKeyCount + (perWorker ? workerKeyCount : 0) + (once ? 1 : 0), lua });
    }
    const r = redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<unknown>>;
    // A script that answers once gets a key of its own per call (registry-once.ts): a re-sent command carries the same.
    const withOnce = (n: ScriptName, k: string[]): string[] => (REGISTRY_SCRIPTS[n].once ? [...k, keys.once(randomId(8))] : k);
    this.run = Object.fromEntries(
      Object.keys(REGISTRY_SCRIPTS).map((n) => [n, (k: string[], ...a: Array<string | number>) => r[n as ScriptName].call(redis, ...withOnce(n as ScriptName, k), ...a)]),
    ) as Record<ScriptName, Runner>;
  }

  private get all(): string[] {
    return this.keys.registryKeys();
  }
  private forWorker(workerId: string): string[] {
    return [...this.keys.registryKeys(), ...this.keys.workerKeys(workerId)];
  }

  /** Delivers the grants a script handed back ([outcome, producerId, waiterId, slotJson, ...]); returns the outcome. */
  private async deliver(res: unknown): Promise<ReleaseOutcome> {
    const [outcome, ...rest] = res as string[];
    if (rest.length > 0) {
      // One pipeline for all of a release's grants (one round trip), not pushInbox per grant. A grant that
      // arrives twice (a re-send after a reconnect) is only logged by the producer (unknown waiter); one that
      // is lost is found with GRANTED_TO. Either way a failed push must not fail the release, whose script ran.
      const pipe = this.redis.pipeline();
      for (let i = 0; i + 2 < rest.length; i += 3) {
        const inbox = this.keys.inbox(rest[i]!);
        pipe.rpush(inbox, JSON.stringify({ t: 'grant', waiterId: rest[i + 1], slot: toRecord(rest[i + 2]!) })).pexpire(inbox, INBOX_TTL_MS);
      }
      await pipe.exec().catch(() => undefined);
    }
    return outcome as ReleaseOutcome;
  }

  async acquire(a: AcquireArgs & { waiterId?: string; waiterTtlMs?: number }): Promise<SlotRecord | null> {
    const res = (await this.run.slotqAcquire(this.all, a.trajectoryId, a.owner, a.leaseId, a.ttlMs, Date.now(), a.waiterId ?? '', a.waiterTtlMs ?? 0, affinityOf(a))) as string[];
    return res[0] === 'slot' && res[1] ? toRecord(res[1]) : null;
  }
  async cancelWaiter(waiterId: string): Promise<boolean> {
    return (await this.run.slotqCancelWaiter(this.all, waiterId)) === 1;
  }
  /** The slot a waiter was granted (the trajectory, in the waiter's scope, holds it under the waiter's lease), or null. */
  async grantedTo(a: Pick<AcquireArgs, 'trajectoryId' | 'owner' | 'scope' | 'leaseId'>): Promise<SlotRecord | null> {
    const res = (await this.run.slotqGrantedTo(this.all, affinityOf(a), a.leaseId)) as string | null;
    return res ? toRecord(res) : null;
  }
  async release(slotId: string, leaseId: string, reset: boolean): Promise<ReleaseOutcome> {
    return this.deliver(await this.run.slotqRelease(this.all, slotId, leaseId, reset ? '1' : '0', Date.now()));
  }
  async renew(ttlMs: number, leases: ReadonlyArray<readonly [slotId: string, leaseId: string]>): Promise<string[]> {
    if (leases.length === 0) return [];
    return (await this.run.slotqRenew(this.all, ttlMs, Date.now(), ...leases.flat())) as string[];
  }
  async checkLeases(leases: ReadonlyArray<readonly [slotId: string, leaseId: string]>): Promise<boolean[]> {
    if (leases.length === 0) return [];
    return ((await this.run.slotqCheckLeases(this.all, ...leases.flat())) as number[]).map((n) => n === 1);
  }
  async registerWorker(workerId: string, heartbeatTtlMs: number, info: Record<string, string | number>): Promise<void> {
    await this.run.slotqRegisterWorker(this.forWorker(workerId), workerId, heartbeatTtlMs, ...Object.entries(info).flat());
  }
  /** image: an on-demand slot's image (its first waiter gets it); omitted for the worker's own pool. */
  async addSlot(slotId: string, workerId: string, containerId: string, image = ''): Promise<ReleaseOutcome> {
    return this.deliver(await this.run.slotqAddSlot(this.forWorker(workerId), slotId, workerId, containerId, Date.now(), image));
  }
  /**
   * Acquire for an image: a slot, the slot of another image the trajectory holds, queued ({wait}: the worker to
   * create for it, or ''), or refused (no live worker's SLOTQ_IMAGES allow the image; nothing queued).
   */
  async acquireImage(a: AcquireArgs & { waiterId: string; waiterTtlMs: number; image: string }): Promise<{ slot: SlotRecord } | { other: SlotRecord } | { refused: true } | { wait: string; evict?: { slotId: string; workerId: string } }> {
    const res = (await this.run.slotqAcquireImage(this.all, a.trajectoryId, a.owner, a.leaseId, a.ttlMs, Date.now(), a.waiterId, a.waiterTtlMs, a.image, affinityOf(a))) as string[];
    if (res[0] === 'slot') return { slot: toRecord(res[1]!) };
    if (res[0] === 'refused') return { refused: true };
    if (res[0] === 'other') return { other: toRecord(res[1]!) };
    return { wait: res[1] ?? '', ...(res[2] ? { evict: { slotId: res[2], workerId: res[3]! } } : {}) };
  }
  /**
   * Publishes the images this worker holds locally, when given its on-demand capacity (onlyIfMissing: when the
   * registry forgot it), and when given its SLOTQ_IMAGES (placement then never puts another image on it).
   */
  async publishImages(workerId: string, images: readonly string[], capacity?: number, onlyIfMissing = false, allow?: readonly string[]): Promise<void> {
    await this.run.slotqPublishImages(this.forWorker(workerId), workerId, capacity ?? '', onlyIfMissing ? 'missing' : 'set', allow ? JSON.stringify(allow) : '', ...images);
  }
  /** After removing a released on-demand slot's container: refill it, or it is gone (and maybe a request waiting for capacity is next). */
  async retireImageSlot(workerId: string, slotId: string, warmPerImage: number): Promise<{ next: 'refill' | 'removed' } | { next: 'provision'; image: string; waiterId: string }> {
    const [next, image, waiterId] = (await this.run.slotqRetireImageSlot(this.forWorker(workerId), workerId, slotId, warmPerImage)) as string[];
    return next === 'provision' ? { next, image: image!, waiterId: waiterId! } : { next: next as 'refill' | 'removed' };
  }
  /**
   * Requests waiting for capacity that this worker's free capacity takes (a worker that joined, or a dead worker's),
   * after reclaiming its reservations whose provision job has not come within reclaimAfterMs.
   */
  async claimPending(workerId: string, reclaimAfterMs: number): Promise<Array<{ image: string; waiterId: string }>> {
    const r = (await this.run.slotqClaimPending(this.forWorker(workerId), workerId, reclaimAfterMs)) as string[];
    const out: Array<{ image: string; waiterId: string }> = [];
    for (let i = 0; i + 1 < r.length; i += 2) out.push({ image: r[i]!, waiterId: r[i + 1]! });
    return out;
  }
  /** A provision job reached the worker: it takes the capacity the acquire reserved (false: reclaimed meanwhile, taken anew). */
  async takeReservation(workerId: string, waiterId: string): Promise<boolean> {
    return (await this.run.slotqTakeReservation(this.forWorker(workerId), workerId, waiterId)) === 1;
  }
  /** Takes a free on-demand slot off the free list when the worker has more warm ones than wanted. */
  async trimImageSlot(workerId: string, slotId: string, warmPerImage: number): Promise<boolean> {
    return (await this.run.slotqTrimImageSlot(this.forWorker(workerId), workerId, slotId, warmPerImage)) === 1;
  }
  /** A container for the waiter could not be made: it leaves the queues (returned, to be told) and the capacity comes back. */
  async failImageWaiter(workerId: string, image: string, waiterId: string): Promise<{ producerId: string; waiterId: string; next?: { image: string; waiterId: string } }> {
    const [p, w, nImage, nWaiter] = (await this.run.slotqFailImageWaiter(this.forWorker(workerId), workerId, image, waiterId)) as string[];
    return { producerId: p ?? '', waiterId: w ?? '', ...(nImage ? { next: { image: nImage, waiterId: nWaiter! } } : {}) };
  }
  async reapLeases(workerId: string): Promise<string[]> {
    return (await this.run.slotqReapLeases(this.all, workerId, Date.now())) as string[];
  }
  async drainWorker(workerId: string): Promise<void> {
    await this.run.slotqDrainWorker(this.forWorker(workerId), workerId);
  }
  async unregisterWorker(workerId: string): Promise<void> {
    await this.run.slotqUnregisterWorker(this.forWorker(workerId), workerId);
  }
  /** Unregisters every worker whose heartbeat expired (each checked again inside its script); returns their ids. */
  async reapDeadWorkers(): Promise<string[]> {
    const [ids, beats, time] = await Promise.all([this.redis.smembers(this.keys.workers), this.redis.zrange(this.keys.heartbeats, 0, -1, 'WITHSCORES'), this.redis.time()]);
    const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    const expiry = new Map<string, number>();
    for (let i = 0; i + 1 < beats.length; i += 2) expiry.set(beats[i]!, Number(beats[i + 1]));
    const suspects = new Set([...ids, ...expiry.keys()].filter((id) => (expiry.get(id) ?? 0) <= nowMs));
    const dead: string[] = [];
    for (const id of suspects) if ((await this.run.slotqReapDeadWorker(this.forWorker(id), id)) === 1) dead.push(id);
    return dead;
  }
  /** Extends the worker's heartbeat; false when its entry is gone (e.g. Redis restarted). */
  async heartbeat(workerId: string, ttlMs: number): Promise<boolean> {
    return (await this.run.slotqHeartbeat(this.forWorker(workerId), workerId, ttlMs)) === 1;
  }
  async workerAlive(workerId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.worker(workerId))) === 1;
  }
  async listWorkers(): Promise<string[]> {
    return this.redis.smembers(this.keys.workers);
  }
  async workerInfo(workerId: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.worker(workerId));
  }
  /** The registry state of each slot (free, held, resetting), or null when Redis has no record of it. */
  async slotStates(slotIds: string[]): Promise<Map<string, string | null>> {
    const res = slotIds.length ? await this.redis.hmget(this.keys.slots, ...slotIds) : [];
    return new Map(slotIds.map((id, i) => [id, res[i] ? (toRecord(res[i])['state'] ?? null) : null]));
  }

  async workerSlots(workerId: string): Promise<SlotRecord[]> {
    const ids = (await this.redis.smembers(this.keys.workerSlots(workerId))).sort();
    const res = ids.length ? await this.redis.hmget(this.keys.slots, ...ids) : [];
    return ids.map((id, i) => ({ ...(res[i] ? toRecord(res[i]) : {}), slotId: id }));
  }
}
