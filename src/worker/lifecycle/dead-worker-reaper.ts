import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { readdir, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { LABELS, type Keys } from '../../shared/keys.js';
import type { Registry } from '../../shared/registry/registry.js';
import type { ContainerDriver } from '../engine/container-driver.js';

/** How often a worker sweeps for dead workers' registry entries, queues and containers on its host. */
export const SWEEP_INTERVAL_MS = 10_000;

export interface DeadWorkerReaperDeps {
  workerId: string;
  prefix: string;
  registry: Pick<Registry, 'reapDeadWorkers' | 'workerAlive'>;
  driver: Pick<ContainerDriver, 'listManaged' | 'remove'>;
  /** Removes a dead worker's BullMQ queue. */
  dropQueue: (workerId: string) => Promise<void>;
  log: Logger;
  host?: string;
  nowMs?: () => number;
  /** This process's path of the FIFO channel directories (fifo-channel.ts): one subdirectory per worker. */
  channelDir?: string;
}

/** A worker's channel subdirectory younger than this is left alone (its worker may not be registered yet). */
const CHANNEL_DIR_GRACE_MS = 120_000;

/**
 * Cleans up after workers that died without stopping: their registry entries and queues (any host),
 * and the containers they left on this host. Any live worker does it, on start and every SWEEP_INTERVAL_MS.
 */
export class DeadWorkerReaper {
  private lastSweepMs: number;
  private readonly now: () => number;

  constructor(private readonly deps: DeadWorkerReaperDeps) {
    this.now = deps.nowMs ?? Date.now;
    this.lastSweepMs = this.now();
  }

  async sweep(): Promise<void> {
    this.lastSweepMs = this.now();
    for (const id of await this.deps.registry.reapDeadWorkers()) {
      await this.deps.dropQueue(id).catch((err: unknown) => this.deps.log.warn({ err, deadWorker: id }, 'could not remove a dead worker queue'));
    }
    const here = await this.deps.driver.listManaged([`${LABELS.prefix}=${this.deps.prefix}`, `${LABELS.host}=${this.deps.host ?? hostname()}`]);
    for (const c of here) {
      const owner = c.labels[LABELS.worker];
      if (owner && owner !== this.deps.workerId && !(await this.deps.registry.workerAlive(owner))) {
        this.deps.log.info({ containerId: c.id.slice(0, 12), deadWorker: owner }, 'removing container left by a dead worker');
        await this.deps.driver.remove(c.id);
      }
    }
    await this.sweepChannelDirs();
  }

  /** Channel subdirectories of workers on this host that died without stopping (their containers are gone with them). */
  private async sweepChannelDirs(): Promise<void> {
    const root = this.deps.channelDir;
    if (!root) return;
    for (const name of await readdir(root).catch(() => [] as string[])) {
      if (name === this.deps.workerId) continue;
      const st = await stat(`${root}/${name}`).catch(() => undefined);
      if (!st?.isDirectory() || this.now() - st.mtimeMs < CHANNEL_DIR_GRACE_MS || (await this.deps.registry.workerAlive(name))) continue;
      await rm(`${root}/${name}`, { recursive: true, force: true }).catch((err: unknown) => this.deps.log.warn({ err, dir: name }, 'could not remove a dead worker channel directory'));
    }
  }

  /** sweep(), when the last one is SWEEP_INTERVAL_MS old. */
  async sweepIfDue(): Promise<void> {
    if (this.now() - this.lastSweepMs > SWEEP_INTERVAL_MS) await this.sweep();
  }
}

/** Obliterates a worker's BullMQ queue (for the reaper). */
export function queueDropper(redis: Redis, keys: Keys): (workerId: string) => Promise<void> {
  return async (workerId) => {
    const q = new Queue(keys.queueName(workerId), { connection: redis, prefix: keys.root });
    try {
      await q.obliterate({ force: true });
    } finally {
      await q.close();
    }
  };
}
