/**
 * Every Redis key and BullMQ queue name, built here and nowhere else.
 * All live under one hash-tagged prefix (`{slotq}`) so a Redis Cluster keeps them in one slot,
 * which the registry's Lua scripts need.
 */
export interface Keys {
  /** The hash-tagged prefix, also BullMQ's `prefix` option. */
  readonly root: string;
  readonly workers: string;
  readonly freeCount: string;
  readonly leases: string;
  readonly waiters: string;
  worker(workerId: string): string;
  free(workerId: string): string;
  slot(slotId: string): string;
  workerSlots(workerId: string): string;
  trajectory(trajectoryId: string): string;
  waiter(waiterId: string): string;
  inbox(producerId: string): string;
  /** A worker's counters for the board's /metrics (written every heartbeat, expires with the worker). */
  workerStats(workerId: string): string;
  /** BullMQ queue name of a worker (no colons: BullMQ forbids them in names and job IDs). */
  queueName(workerId: string): string;
  /** BullMQ's hash for a job in a worker's queue. */
  job(workerId: string, jobId: string): string;
}

export const QUEUE_NAME_PREFIX = 'w-';

export function keysFor(prefix: string): Keys {
  const root = `{${prefix}}`;
  return {
    root,
    workers: `${root}:workers`,
    freeCount: `${root}:freecount`,
    leases: `${root}:leases`,
    waiters: `${root}:waiters`,
    worker: (id) => `${root}:worker:${id}`,
    free: (id) => `${root}:free:${id}`,
    slot: (id) => `${root}:slot:${id}`,
    workerSlots: (id) => `${root}:wslots:${id}`,
    trajectory: (id) => `${root}:traj:${id}`,
    waiter: (id) => `${root}:waiter:${id}`,
    inbox: (id) => `${root}:inbox:${id}`,
    workerStats: (id) => `${root}:wstats:${id}`,
    queueName: (id) => `${QUEUE_NAME_PREFIX}${id}`,
    job: (workerId, jobId) => `${root}:${QUEUE_NAME_PREFIX}${workerId}:${jobId}`,
  };
}

/** Container labels, reverse-DNS. */
export const LABELS = {
  managed: 'org.slotq.managed',
  prefix: 'org.slotq.prefix',
  worker: 'org.slotq.worker',
  host: 'org.slotq.host',
} as const;
