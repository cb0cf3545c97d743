import type { Logger } from 'pino';
import { settlesWithin } from '../../shared/deadline.js';
import { InternalError, toError } from '../../shared/errors.js';
import type { ContainerDriver } from '../engine/container-driver.js';

/** What the worker's parts use of a slot (SlotRuntime is one; unit tests use fakes). */
export interface ManagedSlot {
  readonly slotId: string;
  containerId: string;
  /** Set when the container died; cleared when the slot gets a new one. */
  brokenReason: string | undefined;
  /** Set when a new container replaced a dead one; the holder's next call is told. */
  workspaceLost: boolean;
  /** Runs fn after everything enqueued on the slot before it (FIFO). */
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
  openSession(): Promise<void>;
  attachContainer(containerId: string): Promise<void>;
  close(): void;
}

/** Where new containers come from (the ContainerPool: warm spares, a cap on concurrent creations). */
export interface ContainerSource {
  create(): Promise<string>;
  take(): Promise<string>;
}

/**
 * The slots a worker owns: brings them up (a container, a runtime, an open session; a slot that does not
 * come up is retried on a new container), lets their queued work settle, and removes them on stop.
 */
export class SlotSet<S extends ManagedSlot> {
  constructor(
    readonly slots: Map<string, S>,
    private readonly driver: Pick<ContainerDriver, 'remove'>,
    private readonly newSlot: (slotId: string, containerId: string) => S,
    private readonly log: Logger,
  ) {}

  /** Brings up every slot; waits for all before failing, so none is left half made. */
  async createAll(slotIds: readonly string[], containers: ContainerSource, attempts = 3): Promise<void> {
    const settled = await Promise.allSettled(slotIds.map((slotId) => this.create(slotId, containers, attempts)));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new InternalError(`could not bring up every slot: ${toError(failed.reason).message}`, { cause: failed.reason });
  }

  private async create(slotId: string, containers: ContainerSource, attempts: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const containerId = await containers.create();
      const slot = this.newSlot(slotId, containerId);
      this.slots.set(slotId, slot); // registered before the session opens, so removeAll() removes it either way
      try {
        return await slot.openSession();
      } catch (err) {
        slot.close();
        await this.driver.remove(containerId);
        this.slots.delete(slotId);
        if (attempt >= attempts) throw err;
        this.log.warn({ slotId, attempt, err: toError(err).message }, 'slot did not come up; retrying on a new container');
      }
    }
  }

  /** Slots whose container died and could not be replaced yet. */
  brokenCount(): number {
    return [...this.slots.values()].filter((s) => s.brokenReason !== undefined).length;
  }

  /** Waits (at most ms) for the resets and replacements already queued on the slots. */
  async settle(ms: number): Promise<void> {
    await settlesWithin(Promise.all([...this.slots.values()].map((slot) => slot.enqueue(() => Promise.resolve()))), ms);
  }

  /** Closes every session and removes every container (the slots stay listed, as the worker's API shows them). */
  async removeAll(): Promise<void> {
    for (const slot of this.slots.values()) slot.close();
    await Promise.all([...this.slots.values()].map((s) => this.driver.remove(s.containerId).catch(() => undefined)));
  }
}
