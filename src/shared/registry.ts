import type { Redis } from 'ioredis';
import { REGISTRY_SCRIPTS } from './registry-lua.js';
import type { Keys } from './keys.js';

type ScriptName = keyof typeof REGISTRY_SCRIPTS;
type Runner = (...args: Array<string | number>) => Promise<unknown>;

/** A slot hash as stored in Redis. */
export type SlotRecord = Record<string, string>;
export type ReleaseOutcome = 'gone' | 'lost' | 'resetting' | 'free' | 'granted' | 'parked';

/**
 * Typed access to the registry's Lua scripts (loaded once per connection, run by EVALSHA).
 */
export class Registry {
  private readonly run: Record<ScriptName, Runner>;

  constructor(
    readonly redis: Redis,
    readonly keys: Keys,
  ) {
    for (const [name, lua] of Object.entries(REGISTRY_SCRIPTS)) {
      // One declared key routes the script to the node that owns the hash-tagged slot; every key the
      // scripts touch is under the same {prefix} tag, so a Redis Cluster keeps them on that node.
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 1, lua });
    }
    const r = redis as unknown as Record<ScriptName, Runner>;
    this.run = Object.fromEntries(
      Object.keys(REGISTRY_SCRIPTS).map((n) => [n, (...a: Array<string | number>) => r[n as ScriptName].call(redis, keys.workers, keys.root, ...a)]),
    ) as Record<ScriptName, Runner>;
  }

  async acquire(a: { trajectoryId: string; owner: string; leaseId: string; ttlMs: number; waiterId?: string; waiterTtlMs?: number }): Promise<SlotRecord | null> {
    const res = (await this.run.slotqAcquire(a.trajectoryId, a.owner, a.leaseId, a.ttlMs, Date.now(), a.waiterId ?? '', a.waiterTtlMs ?? 0)) as string[];
    return res[0] === 'slot' && res[1] ? (JSON.parse(res[1]) as SlotRecord) : null;
  }
  async cancelWaiter(waiterId: string): Promise<boolean> {
    return (await this.run.slotqCancelWaiter(waiterId)) === 1;
  }
  async release(slotId: string, leaseId: string, reset: boolean): Promise<ReleaseOutcome> {
    return (await this.run.slotqRelease(slotId, leaseId, reset ? '1' : '0', Date.now())) as ReleaseOutcome;
  }
  async renew(ttlMs: number, leases: ReadonlyArray<readonly [slotId: string, leaseId: string]>): Promise<string[]> {
    if (leases.length === 0) return [];
    return (await this.run.slotqRenew(ttlMs, Date.now(), ...leases.flat())) as string[];
  }
  async checkLeases(leases: ReadonlyArray<readonly [slotId: string, leaseId: string]>): Promise<boolean[]> {
    if (leases.length === 0) return [];
    return ((await this.run.slotqCheckLeases(...leases.flat())) as number[]).map((n) => n === 1);
  }
  async registerWorker(workerId: string, heartbeatTtlMs: number, info: Record<string, string | number>): Promise<void> {
    await this.run.slotqRegisterWorker(workerId, heartbeatTtlMs, ...Object.entries(info).flat());
  }
  async addSlot(slotId: string, workerId: string, containerId: string): Promise<ReleaseOutcome> {
    return (await this.run.slotqAddSlot(slotId, workerId, containerId, Date.now())) as ReleaseOutcome;
  }
  async reapLeases(workerId: string): Promise<string[]> {
    return (await this.run.slotqReapLeases(workerId, Date.now())) as string[];
  }
  async drainWorker(workerId: string): Promise<void> {
    await this.run.slotqDrainWorker(workerId);
  }
  async unregisterWorker(workerId: string): Promise<void> {
    await this.run.slotqUnregisterWorker(workerId);
  }
  async reapDeadWorkers(): Promise<string[]> {
    return (await this.run.slotqReapDeadWorkers()) as string[];
  }
  /** Extends the worker's heartbeat; false when the key is gone (e.g. Redis restarted). */
  async heartbeat(workerId: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.pexpire(this.keys.worker(workerId), ttlMs)) === 1;
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
    const pipe = this.redis.pipeline();
    for (const id of slotIds) pipe.hget(this.keys.slot(id), 'state');
    const res = (await pipe.exec()) ?? [];
    return new Map(slotIds.map((id, i) => [id, (res[i]?.[1] as string | null | undefined) ?? null]));
  }

  async workerSlots(workerId: string): Promise<SlotRecord[]> {
    const ids = (await this.redis.smembers(this.keys.workerSlots(workerId))).sort();
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.slot(id));
    const res = (await pipe.exec()) ?? [];
    return ids.map((id, i) => ({ slotId: id, ...((res[i]?.[1] as SlotRecord | undefined) ?? {}) }));
  }
}
