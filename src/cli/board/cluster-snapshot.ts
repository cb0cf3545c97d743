import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys } from '../../shared/keys.js';
import type { Registry } from '../../shared/registry/registry.js';
import { decodeWorkerStats, type WorkerStats } from '../../shared/worker-stats.js';

export interface SlotView {
  slotId: string;
  state: string;
  trajectoryId: string;
  /** How long the current holder has held it (ms); undefined when free. */
  heldForMs: number | undefined;
  containerId: string;
}

export interface WorkerView {
  workerId: string;
  alive: boolean;
  state: string;
  host: string;
  /** The slots' OCI runtime (runc, runsc) and image, as the worker registered them. */
  runtime: string;
  image: string;
  /** An on-demand image the worker is pulling, and its progress ('' when none). */
  pulling?: string;
  ageMs: number | undefined;
  slots: SlotView[];
  queue: Record<string, number>;
  stats: WorkerStats;
}

export interface ClusterSnapshot {
  prefix: string;
  takenAtMs: number;
  workers: WorkerView[];
}

const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'] as const;

/** Everything the board shows about one prefix, read from the registry, the stats hashes and the queues. */
export async function clusterSnapshot(redis: Redis, registry: Registry, keys: Keys, queueOf: (workerId: string) => Queue | undefined): Promise<ClusterSnapshot> {
  const now = Date.now();
  const ids = (await registry.listWorkers()).sort();
  const workers = await Promise.all(
    ids.map(async (workerId): Promise<WorkerView> => {
      const [info, slots, stats, queue] = await Promise.all([
        registry.workerInfo(workerId),
        registry.workerSlots(workerId),
        redis.hgetall(keys.workerStats(workerId)),
        queueOf(workerId)?.getJobCounts(...QUEUE_STATES) ?? Promise.resolve({}),
      ]);
      const started = Number(info['startedAtMs']);
      return {
        workerId,
        alive: Object.keys(info).length > 0,
        state: info['state'] ?? 'gone',
        host: info['host'] ?? '',
        runtime: info['runtime'] ?? '',
        image: info['image'] ?? '',
        pulling: info['pulling'] ?? '',
        ageMs: Number.isFinite(started) && started > 0 ? now - started : undefined,
        slots: slots.map((s) => ({
          slotId: s['slotId'] ?? '',
          state: s['state'] ?? 'unknown',
          trajectoryId: s['trajectoryId'] ?? '',
          heldForMs: s['state'] === 'held' && s['heldAtMs'] ? now - Number(s['heldAtMs']) : undefined,
          containerId: (s['containerId'] ?? '').slice(0, 12),
        })),
        queue,
        stats: decodeWorkerStats(stats),
      };
    }),
  );
  return { prefix: keys.root, takenAtMs: now, workers };
}
