import { imageKeyList, imageKeys, type ImageKeys } from './registry/image-keys.js';

/**
 * Every Redis key and BullMQ queue name, built here and nowhere else.
 * All live under one hash-tagged prefix (`{slotq}`) so a Redis Cluster keeps them in one slot.
 * The registry's Lua scripts touch only keys passed to them in KEYS, in the order of `registryKeys` and
 * `workerKeys` below; none is built inside Lua.
 */
export interface Keys {
  /** The hash-tagged prefix, also BullMQ's `prefix` option. */
  readonly root: string;
  /** Set of registered worker IDs. */
  readonly workers: string;
  /** Hash: slotId → JSON record (workerId, containerId, state, trajectoryId, affinity, owner, leaseId, leaseExpMs, heldAtMs). */
  readonly slots: string;
  /** Hash: owner-scoped affinity key (`<scope>\x1f<trajectoryId>`, affinity.ts) → slotId of the slot it holds. */
  readonly trajectories: string;
  /** Sorted set: slotId → lease expiry (ms). */
  readonly leases: string;
  /** Sorted set: workerId → how many free slots it has (acquire picks the highest). */
  readonly freeCount: string;
  /** Sorted set of free slots, all at score 0, member `<workerId> <slotId>` (a worker's are one lex range). */
  readonly freeSlots: string;
  /** Sorted set: workerId → heartbeat expiry (ms, Redis clock). */
  readonly heartbeats: string;
  /** Set of draining worker IDs (no new leases on their slots). */
  readonly draining: string;
  /** List of waiter IDs, first come first served. */
  readonly waiters: string;
  /** Hash: waiterId → JSON (producerId, trajectoryId, affinity, leaseId, ttlMs, expMs). */
  readonly waiterInfo: string;
  /** Per-trajectory images (image-keys.ts describes them): free slots, waiters, requests waiting for capacity, where images are, capacity, counters, reservations. */
  readonly images: ImageKeys;
  /** A worker's info hash; it expires unless heartbeats extend it. */
  worker(workerId: string): string;
  /** Set of a worker's slot IDs. */
  workerSlots(workerId: string): string;
  inbox(producerId: string): string;
  /** The CLI's log of what ran in a held trajectory (slotq exec), newest last; expires with the hold. */
  cliLog(trajectoryId: string): string;
  /** A worker's counters for the board's /metrics (written every heartbeat, expires with the worker). */
  workerStats(workerId: string): string;
  /** BullMQ queue name of a worker (no colons: BullMQ forbids them in names and job IDs). */
  queueName(workerId: string): string;
  /** String, expiring: the result of one run of a mutating registry script, so a re-sent run answers the same (registry-once.ts). */
  once(opId: string): string;
  /** BullMQ's hash for a job in a worker's queue. */
  job(workerId: string, jobId: string): string;
  /** BullMQ's keys of a worker's queue that the fetch probe (fetch-probe.ts) reads, as BullMQ builds them. */
  queueKeys(workerId: string): QueueKeys;
  /** KEYS[1..17] of every registry script, in the order registry-lua.ts names them. */
  registryKeys(): string[];
  /** KEYS[18..20] of the scripts about one worker: its info hash, its slot set, its stats hash. */
  workerKeys(workerId: string): string[];
}

/** Keys of one worker's BullMQ queue, spelled as BullMQ's QueueKeys spells them (`<prefix>:<queue>:<type>`). */
export interface QueueKeys {
  readonly active: string;
  readonly wait: string;
  readonly prioritized: string;
  readonly marker: string;
  /** The prefix of the queue's job hashes (BullMQ's `keys['']`): a job's hash is this followed by its ID. */
  readonly jobPrefix: string;
}

export const QUEUE_NAME_PREFIX = 'w-';
/** Separates worker and slot ID in a member of `freeSlots` (IDs never contain it). */
export const FREE_SLOT_SEPARATOR = ' ';

export function keysFor(prefix: string): Keys {
  const root = `{${prefix}}`;
  const queuePrefix = (workerId: string): string => `${root}:${QUEUE_NAME_PREFIX}${workerId}:`;
  const k: Omit<Keys, 'registryKeys' | 'workerKeys'> = {
    root,
    workers: `${root}:workers`,
    slots: `${root}:slots`,
    trajectories: `${root}:trajs`,
    leases: `${root}:leases`,
    freeCount: `${root}:freecount`,
    freeSlots: `${root}:freeslots`,
    heartbeats: `${root}:heartbeats`,
    draining: `${root}:draining`,
    waiters: `${root}:waiters`,
    waiterInfo: `${root}:waiterinfo`,
    images: imageKeys(root),
    worker: (id) => `${root}:worker:${id}`,
    workerSlots: (id) => `${root}:wslots:${id}`,
    inbox: (id) => `${root}:inbox:${id}`,
    cliLog: (t) => `${root}:clilog:${t}`,
    workerStats: (id) => `${root}:wstats:${id}`,
    queueName: (id) => `${QUEUE_NAME_PREFIX}${id}`,
    once: (opId) => `${root}:once:${opId}`,
    job: (workerId, jobId) => `${queuePrefix(workerId)}${jobId}`,
    queueKeys: (workerId) => {
      const q = queuePrefix(workerId);
      return { active: `${q}active`, wait: `${q}wait`, prioritized: `${q}prioritized`, marker: `${q}marker`, jobPrefix: q };
    },
  };
  return {
    ...k,
    registryKeys: () => [k.workers, k.slots, k.trajectories, k.leases, k.freeCount, k.freeSlots, k.heartbeats, k.draining, k.waiters, k.waiterInfo, ...imageKeyList(k.images)],
    workerKeys: (id) => [k.worker(id), k.workerSlots(id), k.workerStats(id)],
  };
}

/** Container labels, reverse-DNS. */
export const LABELS = {
  managed: 'org.slotq.managed',
  prefix: 'org.slotq.prefix',
  worker: 'org.slotq.worker',
  host: 'org.slotq.host',
  /** A short-lived helper container (the fill container of the helper volume, docker-driver.ts's HELPER_LABEL), value "true". */
  helper: 'org.slotq.helper',
} as const;
