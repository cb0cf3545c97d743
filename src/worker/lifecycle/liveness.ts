import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import { randomId } from '../../shared/ids.js';
import type { Registry } from '../../shared/registry/registry.js';
import type { ManagedSlot } from './slot-set.js';

/** Where a SlotWorker is in its life; the parts it wires read it to decide what they may do. */
export type WorkerPhase = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface LivenessDeps<S extends ManagedSlot> {
  workerId: string;
  registry: Pick<Registry, 'heartbeat' | 'registerWorker' | 'slotStates'>;
  /** How long the registry keeps this worker without a heartbeat. */
  heartbeatTtlMs: number;
  /** After heartbeat trouble, how long heartbeats must flow before housekeeping (reaping) runs again; default 2 × heartbeatTtlMs. */
  reapGraceMs?: number;
  phase: () => WorkerPhase;
  /** The worker's registry record (host, pid, slots, ...). */
  info: () => Record<string, string | number>;
  slots: ReadonlyMap<string, S>;
  listAsFree: (slot: S) => Promise<void>;
  resetInBackground: (slotId: string) => void;
  /** The rest of a running worker's round (sweeps, lease reaping, metrics), on a timer of its own. */
  housekeeping: () => Promise<void>;
  log: Logger;
}

/**
 * Keeps the worker known to the registry: registers it, heartbeats every quarter of its TTL (from the
 * start on: creating many containers can take longer than the TTL), and registers again and resyncs its
 * slots when the registry forgot it (Redis restarted, or heartbeats stalled). The heartbeat has a timer
 * of its own: the housekeeping (sweeps, lease reaping, metrics; Docker-bound some of them) runs on another, so
 * a stalled engine never gets a live worker declared lost.
 *
 * Each registration is a new incarnation (`epoch`, in the worker's registry record): a call starts only
 * under the current one (call-fence.ts). A worker whose last successful heartbeat is older than its TTL
 * (paused, starved, cut off) is `fresh` no more: it starts no call until it has registered again, as a
 * new incarnation. Calls it was handed before still start after that unless their producer gave them up
 * meanwhile: a producer fences a job before it answers for it, so a fenced call never starts.
 *
 * After heartbeat trouble (a beat that failed, found the worker forgotten, or came after a gap longer than
 * the TTL: Redis away, a Sentinel failover, this process paused) housekeeping waits until heartbeats have
 * flowed for `reapGraceMs`. Every other worker's heartbeat stopped through the same outage and expired
 * with it; the first worker back must not take those for deaths and reap them (entries, queues, containers),
 * nor reap leases whose producers could not renew them meanwhile.
 */
export class Liveness<S extends ManagedSlot> {
  private beatTimer: NodeJS.Timeout | undefined;
  private housekeepingTimer: NodeJS.Timeout | undefined;
  private beating = false;
  private choring = false;
  private lastOkMs = 0;
  private troubleAtMs = Number.NEGATIVE_INFINITY;
  private incarnation = randomId(6);

  constructor(private readonly deps: LivenessDeps<S>) {}

  /** This incarnation's ID, as registered. */
  get epoch(): string {
    return this.incarnation;
  }

  /** Whether the registry heard from this worker within its TTL (else it may have been declared lost). */
  fresh(nowMs = Date.now()): boolean {
    return nowMs - this.lastOkMs < this.deps.heartbeatTtlMs;
  }

  /** Fresh, and no heartbeat trouble within the grace period: only then may this worker judge others dead. */
  settled(nowMs = Date.now()): boolean {
    return this.fresh(nowMs) && nowMs - this.troubleAtMs >= (this.deps.reapGraceMs ?? 2 * this.deps.heartbeatTtlMs);
  }

  private trouble(why: string): void {
    if (this.settled()) this.deps.log.warn({ why }, 'heartbeat trouble: no reaping until heartbeats have flowed for the grace period');
    this.troubleAtMs = Date.now();
  }

  async register(): Promise<void> {
    this.incarnation = randomId(6);
    const sentAtMs = Date.now();
    await this.deps.registry.registerWorker(this.deps.workerId, this.deps.heartbeatTtlMs, { ...this.deps.info(), epoch: this.incarnation });
    this.lastOkMs = sentAtMs;
  }

  start(): void {
    const every = Math.max(250, Math.round(this.deps.heartbeatTtlMs / 4));
    this.beatTimer ??= setInterval(() => void this.tick(), every);
    this.housekeepingTimer ??= setInterval(() => void this.housekeepingRound(), every);
  }

  stop(): void {
    clearInterval(this.beatTimer);
    clearInterval(this.housekeepingTimer);
    this.beatTimer = this.housekeepingTimer = undefined;
  }

  /** One heartbeat (and, running, a resync when forgotten). One at a time; never throws. */
  async tick(): Promise<void> {
    const phase = this.deps.phase();
    // One at a time: while Redis is away beats would pile up and each would resync on its return.
    if (this.beating || phase === 'idle' || phase === 'stopped') return;
    this.beating = true;
    try {
      const sentAtMs = Date.now();
      // A worker that was not fresh may have been declared lost meanwhile: it comes back as a new incarnation.
      const wasFresh = this.fresh(sentAtMs);
      if (!wasFresh) this.trouble('no heartbeat went through within the TTL');
      const alive = wasFresh && (await this.deps.registry.heartbeat(this.deps.workerId, this.deps.heartbeatTtlMs));
      if (wasFresh && !alive) this.trouble('the registry forgot this worker');
      if (alive) this.lastOkMs = sentAtMs;
      // While starting or draining only the heartbeat runs: calls in flight must not look like a dead worker's.
      else if (phase === 'starting') await this.register();
      else if (phase === 'running') await this.resync();
    } catch (err) {
      this.trouble('heartbeat failed');
      this.deps.log.warn({ err: toError(err).message }, 'heartbeat failed');
    } finally {
      this.beating = false;
    }
  }

  /** The rest of a running worker's round, on its own timer. Never throws. */
  async housekeepingRound(): Promise<void> {
    if (this.choring || this.deps.phase() !== 'running' || !this.settled()) return;
    this.choring = true;
    try {
      await this.deps.housekeeping();
    } catch (err) {
      this.deps.log.warn({ err: toError(err).message }, 'worker housekeeping failed');
    } finally {
      this.choring = false;
    }
  }

  /**
   * Our registry entry expired. Held slots whose record survived keep their holder; free ones are listed
   * again; any other slot gets a pristine container before it is offered.
   */
  private async resync(): Promise<void> {
    this.deps.log.warn('registry entry vanished or stale (Redis restarted, or heartbeats stalled); registering again as a new incarnation');
    // The old entry goes first: a stale one (this worker was paused) must not be extended under the new epoch.
    await this.register();
    for (const [slotId, state] of await this.deps.registry.slotStates([...this.deps.slots.keys()])) {
      const slot = this.deps.slots.get(slotId);
      if (!slot || state === 'held') continue;
      if (state === 'free') await this.deps.listAsFree(slot);
      else this.deps.resetInBackground(slotId);
    }
  }
}
