import { keysFor } from '../../src/shared/keys.js';
import { createRedis } from '../../src/shared/redis.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { killContainer } from '../testkit/docker.js';
import type { OwnRedis } from './own-redis.js';
import type { Scenario, WorkerHandle } from './scenario.js';

export const FAULT_KINDS = ['container', 'worker', 'redis'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface PlannedFault {
  atCalls: number;
  kind: FaultKind;
}

/** A small seeded PRNG (mulberry32), so a run's fault plan can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` faults at random call counts between 10 % and 85 % of the run, every kind at least once
 * (when count allows), the rest of random kinds.
 */
export function planFaults(totalCalls: number, count: number, random: () => number): PlannedFault[] {
  const kinds: FaultKind[] = Array.from({ length: count }, (_, i) => FAULT_KINDS[i] ?? FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)]!);
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const span = 0.75 / count;
  return kinds.map((kind, i) => ({ kind, atCalls: Math.round(totalCalls * (0.1 + span * (i + 0.25 + random() * 0.5))) }));
}

/** Injects the soak's faults: kills a held slot's container, SIGKILLs (and restarts) a worker, restarts Redis. */
export class FaultInjector {
  readonly log: string[] = [];

  constructor(
    private readonly s: Scenario,
    readonly workers: WorkerHandle[],
    private readonly redis: OwnRedis,
    private readonly random: () => number,
    private readonly onWorker: (w: WorkerHandle) => void,
  ) {}

  async inject(kind: FaultKind): Promise<void> {
    switch (kind) {
      case 'container':
        return this.killSlotContainer();
      case 'worker':
        return this.killWorker();
      case 'redis':
        return this.restartRedis();
    }
  }

  /** docker kill of the container of a random held slot (the registry says which container serves it). */
  private async killSlotContainer(): Promise<void> {
    const redis = createRedis(this.s.redisUrl, { name: 'slotq-chaos-faults', ...this.s.clusterOpt() });
    try {
      const registry = new Registry(redis, keysFor(this.s.prefix));
      const held = (await Promise.all(this.workers.map((w) => registry.workerSlots(w.workerId)))).flat().filter((x) => x['state'] === 'held' && x['containerId']);
      for (let tries = 0; tries < 5 && held.length; tries++) {
        const [victim] = held.splice(Math.floor(this.random() * held.length), 1);
        const atMs = Date.now();
        // false or an error: gone already (reset or replaced meanwhile), so pick another
        const killed = await killContainer(victim!['containerId']!).catch(() => false);
        if (!killed) continue;
        this.s.rec.watchRecovery(`container kill (${victim!.slotId})`, atMs, (x) => x.slotId === victim!.slotId);
        this.log.push(`container of ${victim!.slotId}`);
        return;
      }
      this.log.push('container kill skipped: no held slot with a live container');
    } finally {
      redis.disconnect();
    }
  }

  private async killWorker(): Promise<void> {
    const i = Math.floor(this.random() * this.workers.length);
    const victim = this.workers[i]!;
    await victim.proc.kill();
    const atMs = Date.now();
    let successor = '';
    this.s.rec.watchRecovery(`worker SIGKILL (${victim.workerId})`, atMs, (x) => x.workerId === successor);
    const next = await this.s.startWorker(victim.slots, victim.env);
    successor = next.workerId;
    this.workers[i] = next;
    this.onWorker(next);
    this.log.push(`worker ${victim.workerId} (restarted as ${next.workerId} after ${Date.now() - atMs} ms)`);
  }

  private async restartRedis(): Promise<void> {
    const atMs = Date.now();
    await this.redis.restart();
    this.s.rec.watchRecovery('Redis restart', atMs, () => true, Date.now());
    this.log.push(`Redis (back after ${Date.now() - atMs} ms)`);
  }
}
