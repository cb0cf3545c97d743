import type { Logger } from 'pino';
import { toError } from '../shared/errors.js';
import type { ContainerDriver } from './container-driver.js';
import type { ContainerSource, ManagedSlot } from './slot-set.js';

export interface SlotResetterDeps<S extends ManagedSlot> {
  slots: ReadonlyMap<string, S>;
  containers: ContainerSource;
  driver: Pick<ContainerDriver, 'remove'>;
  /** Offers the slot again in the registry (free, for the next holder). */
  relist: (slot: S) => Promise<void>;
  /** Whether the worker is running (a stopping worker neither takes new containers nor relists). */
  running: () => boolean;
  log: Logger;
}

/**
 * Gives slots new containers: a pristine one on reset (then the slot is free again), a fresh one in place
 * of a dead one (the holder keeps the slot and is told its workspace is gone). Old containers are removed
 * off the slot's path; drained() waits for those removals.
 */
export class SlotResetter<S extends ManagedSlot> {
  private readonly removals = new Set<Promise<void>>();

  constructor(private readonly d: SlotResetterDeps<S>) {}

  /** Gives the slot a pristine container (a warm spare when there is one), inside its FIFO, then frees it. */
  async reset(slotId: string): Promise<void> {
    const slot = this.d.slots.get(slotId);
    if (!slot) return;
    await slot.enqueue(async () => {
      const old = slot.containerId;
      try {
        const fresh = await this.d.containers.take();
        if (!this.d.running()) return void (await this.d.driver.remove(fresh));
        await slot.attachContainer(fresh);
      } catch (err) {
        this.d.log.error({ slotId, err: toError(err).message }, 'reset failed: no new container');
        slot.brokenReason = `reset failed: ${toError(err).message}`;
        return;
      } finally {
        this.removeLater(old);
      }
      slot.workspaceLost = false;
      if (this.d.running()) await this.d.relist(slot);
    });
  }

  /** reset() without waiting; a failure is logged. */
  resetInBackground(slotId: string): void {
    this.reset(slotId).catch((err: unknown) => this.d.log.error({ slotId, err: toError(err).message }, 'reset failed'));
  }

  /** Replaces a dead container (call it inside the slot's FIFO); the slot stays leased to its holder, whose next call is told. */
  async replaceBroken(slot: S): Promise<void> {
    if (slot.brokenReason === undefined || !this.d.running()) return;
    try {
      const fresh = await this.d.containers.take();
      if (!this.d.running()) return void (await this.d.driver.remove(fresh));
      const dead = slot.containerId;
      await slot.attachContainer(fresh);
      slot.workspaceLost = true;
      await this.d.driver.remove(dead);
      this.d.log.warn({ slotId: slot.slotId }, 'replaced a dead container');
    } catch (err) {
      this.d.log.error({ slotId: slot.slotId, err: toError(err).message }, 'replacing a dead container failed');
    }
  }

  /** Resolves once every old container handed to removeLater is gone. */
  async drained(): Promise<void> {
    await Promise.all([...this.removals]);
  }

  private removeLater(containerId: string): void {
    const p: Promise<void> = this.d.driver
      .remove(containerId)
      .catch((err: unknown) => this.d.log.warn({ err: toError(err).message }, 'removing an old container failed'))
      .finally(() => this.removals.delete(p));
    this.removals.add(p);
  }
}
