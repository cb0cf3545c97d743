import type { Logger } from 'pino';
import { toError } from '../shared/errors.js';
import type { Registry } from '../shared/registry.js';
import type { ManagedSlot } from './slot-set.js';
import type { WorkerPhase } from './worker-phase.js';

export interface LivenessDeps<S extends ManagedSlot> {
  workerId: string;
  registry: Pick<Registry, 'heartbeat' | 'registerWorker' | 'slotStates'>;
  /** How long the registry keeps this worker without a heartbeat. */
  heartbeatTtlMs: number;
  phase: () => WorkerPhase;
  /** The worker's registry record (host, pid, slots, ...). */
  info: () => Record<string, string | number>;
  slots: ReadonlyMap<string, S>;
  relist: (slot: S) => Promise<void>;
  resetInBackground: (slotId: string) => void;
  /** The rest of a running worker's round (sweeps, lease reaping, metrics), after the heartbeat. */
  chores: () => Promise<void>;
  log: Logger;
}

/**
 * Keeps the worker known to the registry: registers it, heartbeats every quarter of its TTL (from the
 * start on: creating many containers can take longer than the TTL), and registers again and resyncs its
 * slots when the registry forgot it (Redis restarted, or heartbeats stalled). One round at a time.
 */
export class Liveness<S extends ManagedSlot> {
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly d: LivenessDeps<S>) {}

  async register(): Promise<void> {
    await this.d.registry.registerWorker(this.d.workerId, this.d.heartbeatTtlMs, this.d.info());
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), Math.max(250, Math.round(this.d.heartbeatTtlMs / 4)));
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round: heartbeat, then (running only) resync when forgotten and the chores. Never throws. */
  async tick(): Promise<void> {
    const phase = this.d.phase();
    // One round at a time: while Redis is away rounds would pile up and each would resync on its return.
    if (this.ticking || phase === 'idle' || phase === 'stopped') return;
    this.ticking = true;
    try {
      const alive = await this.d.registry.heartbeat(this.d.workerId, this.d.heartbeatTtlMs);
      // While starting or draining only the heartbeat runs: calls in flight must not look like a dead worker's.
      if (phase === 'starting') {
        if (!alive) await this.register();
        return;
      }
      if (phase === 'stopping') return;
      if (!alive) await this.resync();
      await this.d.chores();
    } catch (err) {
      this.d.log.warn({ err: toError(err).message }, 'heartbeat failed');
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Our registry entry expired. Held slots whose record survived keep their holder; free ones are listed
   * again; any other slot gets a pristine container before it is offered.
   */
  private async resync(): Promise<void> {
    this.d.log.warn('registry entry vanished (Redis restarted, or heartbeats stalled); registering again');
    await this.register();
    for (const [slotId, state] of await this.d.registry.slotStates([...this.d.slots.keys()])) {
      const slot = this.d.slots.get(slotId);
      if (!slot || state === 'held') continue;
      if (state === 'free') await this.d.relist(slot);
      else this.d.resetInBackground(slotId);
    }
  }
}
