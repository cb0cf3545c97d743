import type { EventEmitter } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { ContainerDriver, ContainerSpec } from './container-driver.js';
import { withDeadline } from '../../shared/deadline.js';
import { InternalError, toError } from '../../shared/errors.js';

const CREATE_TIMEOUT_MS = 120_000;
import type { WorkerEventMap } from '../worker-events.js';

/**
 * Creates slot containers with a concurrency cap and keeps warm spares, so a reset swaps in a ready
 * container instead of waiting for dockerd.
 */
export class ContainerPool {
  private readonly spares: string[] = [];
  private readonly filling = new Set<Promise<void>>();
  private closed = false;
  /** Caps concurrent container creations, so dockerd is never flooded. */
  private readonly limit: LimitFunction;

  constructor(
    private readonly driver: ContainerDriver,
    private readonly spec: ContainerSpec,
    private readonly spareTarget: number,
    maxConcurrent: number,
    private readonly log: Logger,
    private readonly events?: EventEmitter<WorkerEventMap>,
  ) {
    this.limit = pLimit(maxConcurrent);
  }

  async create(): Promise<string> {
    return this.limit(async () => {
      try {
        const id = await withDeadline(
          this.driver.create(this.spec),
          CREATE_TIMEOUT_MS,
          () => new InternalError(`creating a container took longer than ${CREATE_TIMEOUT_MS / 1000} s (is dockerd overloaded?)`),
          { onLate: (late) => void this.driver.remove(late).catch(() => undefined) }, // created after the deadline: not ours any more
        );
        this.events?.emit('container:created', { containerId: id });
        return id;
      } catch (err) {
        this.events?.emit('container:failed', { error: toError(err).message });
        throw err;
      }
    });
  }

  /** A ready container: a warm spare when there is one, else a new one. Refills spares in the background. */
  async take(): Promise<string> {
    const spare = this.spares.shift();
    this.refill();
    return spare ?? this.create();
  }


  refill(): void {
    while (!this.closed && this.spares.length + this.filling.size < this.spareTarget) {
      const p: Promise<void> = this.create()
        .then(async (id) => {
          if (this.closed) await this.driver.remove(id);
          else this.spares.push(id);
        })
        .catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'creating a warm spare container failed'))
        .finally(() => this.filling.delete(p));
      this.filling.add(p);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.filling]);
    const ids = this.spares.splice(0);
    await Promise.all(ids.map((id) => this.driver.remove(id)));
  }
}
