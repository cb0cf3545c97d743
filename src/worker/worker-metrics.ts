import type { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { STATS_FIELDS, callsField, latencyFields } from '../shared/worker-stats.js';
import type { WorkerEventMap } from './worker-events.js';

/**
 * Counts a worker's calls, latencies and container creations in memory (from `SlotWorker.events`) and
 * publishes them as one small hash, so the board (another process) can serve them on /metrics.
 * Costs nothing per call in Redis: two commands (HSET + PEXPIRE) per publish, i.e. per heartbeat.
 */
export class WorkerMetrics {
  private readonly counters = new Map<string, number>();

  constructor(events: EventEmitter<WorkerEventMap>) {
    events.on('call:done', (e) => {
      this.add(callsField(e.tool, e.success ? 'ok' : (e.code ?? 'INTERNAL')), 1);
      const f = latencyFields(e.tool, e.durationMs / 1000);
      this.add(f.bucket, 1);
      this.add(f.sum, e.durationMs / 1000);
      this.add(f.count, 1);
    });
    events.on('container:created', () => this.add(STATS_FIELDS.containersCreated, 1));
    events.on('container:failed', () => this.add(STATS_FIELDS.containersFailed, 1));
  }

  private add(field: string, n: number): void {
    this.counters.set(field, (this.counters.get(field) ?? 0) + n);
  }

  /** The hash as it is published (a snapshot). */
  toHash(brokenSlots: number, nowMs = Date.now()): Record<string, string> {
    const out: Record<string, string> = { [STATS_FIELDS.brokenSlots]: String(brokenSlots), [STATS_FIELDS.updatedAtMs]: String(nowMs) };
    for (const [k, v] of this.counters) out[k] = String(Math.round(v * 1e6) / 1e6);
    return out;
  }

  /** Writes the hash with a TTL (so it vanishes with a dead worker). One round trip. */
  async publish(redis: Redis, key: string, ttlMs: number, brokenSlots: number): Promise<void> {
    await redis.pipeline().hset(key, this.toHash(brokenSlots)).pexpire(key, ttlMs).exec();
  }
}
