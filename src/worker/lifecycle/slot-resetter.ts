import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import type { ContainerDriver } from '../engine/container-driver.js';
import type { ContainerSource, ManagedSlot } from './slot-set.js';

export interface SlotResetterDeps<S extends ManagedSlot> {
  slots: ReadonlyMap<string, S>;
  containers: ContainerSource;
  driver: Pick<ContainerDriver, 'remove'>;
  /** Offers the slot again in the registry (free, for the next holder). */
  listAsFree: (slot: S) => Promise<void>;
  /** Whether the worker is running (a stopping worker neither takes new containers nor lists slots as free again). */
  running: () => boolean;
  /** The slot's state in the registry (free|held|resetting, null when its record is gone). */
  registryState?: (slotId: string) => Promise<string | null>;
  /** Pauses between attempts when a reset cannot get a new container (ms); the default is 250, 1 000, 4 000. */
  backoffMs?: readonly number[];
  log: Logger;
}

const BACKOFF_MS = [250, 1000, 4000] as const;

/**
 * Gives slots new containers: a pristine one on reset (then the slot is free again), a fresh one in place
 * of a dead one (the holder keeps the slot and is told its workspace is gone). Old containers are removed
 * off the slot's path; drained() waits for those removals.
 */
export class SlotResetter<S extends ManagedSlot> {
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly deps: SlotResetterDeps<S>) {}

  /**
   * Gives the slot a pristine container (a warm spare when there is one), inside its FIFO, then frees it.
   * Idempotent: a slot the registry shows free or held (reset already, or handed out since) is left alone,
   * so a reset job and the sweep may both ask. A container that cannot be had is tried again with backoff;
   * after that the slot stays out of circulation (`resetting`) and the next sweep tries again.
   */
  async reset(slotId: string): Promise<void> {
    const slot = this.deps.slots.get(slotId);
    if (!slot) return;
    await slot.enqueue(async () => {
      const state = await this.deps.registryState?.(slotId);
      if (state === 'free' || state === 'held') return;
      const old = slot.containerId;
      const backoff = this.deps.backoffMs ?? BACKOFF_MS;
      for (let attempt = 0; ; attempt++) {
        try {
          const fresh = await this.deps.containers.take();
          if (!this.deps.running()) {
            this.removeLater(old);
            return void (await this.deps.driver.remove(fresh));
          }
          await slot.attachContainer(fresh);
          break;
        } catch (err) {
          const why = toError(err).message;
          if (slot.containerId !== old) this.removeLater(slot.containerId); // a fresh container whose session failed
          if (attempt >= backoff.length || !this.deps.running()) {
            this.deps.log.error({ slotId, attempts: attempt + 1, err: why }, 'reset failed: no new container; the slot waits for the next sweep');
            slot.brokenReason = `reset failed: ${why}`;
            this.removeLater(old);
            return;
          }
          this.deps.log.warn({ slotId, attempt: attempt + 1, err: why }, 'reset: no new container yet; trying again');
          await new Promise((r) => setTimeout(r, backoff[attempt]));
        }
      }
      this.removeLater(old);
      slot.workspaceLost = false;
      if (this.deps.running()) await this.deps.listAsFree(slot);
    });
  }

  /**
   * Slots the registry shows `resetting` in two sweeps in a row with no reset done meanwhile: a producer
   * died between releasing with reset and sending the reset job, or a reset failed. Returns those to reset
   * (reset() is idempotent, so a reset job still on its way does no harm).
   */
  stranded(states: ReadonlyMap<string, string | null>): string[] {
    const out: string[] = [];
    for (const [slotId, state] of states) {
      if (state !== 'resetting') this.seenResetting.delete(slotId);
      else if (this.seenResetting.has(slotId)) out.push(slotId);
      else this.seenResetting.add(slotId);
    }
    for (const id of out) this.seenResetting.delete(id);
    return out;
  }

  private readonly seenResetting = new Set<string>();

  /** reset() without waiting; a failure is logged. */
  resetInBackground(slotId: string): void {
    this.reset(slotId).catch((err: unknown) => this.deps.log.error({ slotId, err: toError(err).message }, 'reset failed'));
  }

  /** Replaces a dead container (call it inside the slot's FIFO); the slot stays leased to its holder, whose next call is told. */
  async replaceBroken(slot: S): Promise<void> {
    if (slot.brokenReason === undefined || !this.deps.running()) return;
    try {
      const fresh = await this.deps.containers.take();
      if (!this.deps.running()) return void (await this.deps.driver.remove(fresh));
      const dead = slot.containerId;
      await slot.attachContainer(fresh);
      slot.workspaceLost = true;
      await this.deps.driver.remove(dead);
      this.deps.log.warn({ slotId: slot.slotId }, 'replaced a dead container');
    } catch (err) {
      this.deps.log.error({ slotId: slot.slotId, err: toError(err).message }, 'replacing a dead container failed');
    }
  }

  /** Resolves once every old container handed to removeLater is gone. */
  async drained(): Promise<void> {
    await Promise.all([...this.removals]);
  }

  private removeLater(containerId: string): void {
    const p: Promise<void> = this.deps.driver
      .remove(containerId)
      .catch((err: unknown) => this.deps.log.warn({ err: toError(err).message }, 'removing an old container failed'))
      .finally(() => this.removals.delete(p));
    this.removals.add(p);
  }
}
