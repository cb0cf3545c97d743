import { SlotqError, toError } from '../../src/shared/errors.js';
import type { Slot } from '../../src/shared/calls/schemas.js';
import { raceDeadline } from '../../src/shared/deadline.js';
import { checkedBatch, type CallEnv, type CallSpec, type Outcome } from './calls.js';

/** Acquisitions in a row that may find no slot before the scenario gives up. */
const MAX_NO_SLOT = 20;

/**
 * An agent trajectory of the chaos run: holds a slot, runs checked calls on it, and after a retryable
 * failure moves to a freshly acquired slot (released with reset, new trajectory ID).
 */
export class Trajectory {
  private current: Slot | undefined;
  private attempt = 0;

  constructor(
    private readonly env: CallEnv,
    readonly id: string,
    private readonly acquireTimeoutMs = 60_000,
  ) {}

  get slot(): Slot | undefined {
    return this.current;
  }

  /** The held slot, acquired when there is none. NO_SLOT counts as retried; gives up after MAX_NO_SLOT in a row. */
  async ensureSlot(): Promise<Slot> {
    for (let misses = 0; !this.current; ) {
      const got = await acquireWithDeadline(this.env, `${this.id}-a${this.attempt}`, this.acquireTimeoutMs);
      if (got === 'lost') {
        this.attempt++;
      } else if (got instanceof Error) {
        if (!(got instanceof SlotqError) || got.code !== 'NO_SLOT' || ++misses >= MAX_NO_SLOT) throw got;
        this.env.rec.retry('NO_SLOT');
      } else {
        this.current = got;
      }
    }
    return this.current;
  }

  /** One checked call on this trajectory's slot; a retryable failure moves it to a fresh slot. */
  async call(spec: CallSpec): Promise<Outcome> {
    const slot = await this.ensureSlot();
    const [outcome] = await checkedBatch(this.env, [[slot, spec]]);
    if (outcome === 'retry') await this.moveOn();
    return outcome!;
  }

  /** Runs the calls in order; on a retryable failure starts them again on a fresh slot (up to maxRounds). */
  async unit(specs: readonly CallSpec[], maxRounds = 10): Promise<Outcome> {
    for (let round = 0; round < maxRounds; round++) {
      let outcome: Outcome = 'ok';
      for (const spec of specs) {
        outcome = await this.call(spec);
        if (outcome !== 'ok') break;
      }
      if (outcome !== 'retry') return outcome;
    }
    this.env.rec.note(`trajectory ${this.id}: still retrying after ${maxRounds} rounds`);
    return 'retry';
  }

  /** Releases the slot (with reset) and forgets it: the next call acquires a fresh one. */
  async moveOn(): Promise<void> {
    await this.release();
    this.attempt++;
  }

  async release(): Promise<void> {
    const slot = this.current;
    this.current = undefined;
    if (!slot) return;
    await this.env.backend.release(slot, { resetWorkspace: true }).catch((err: unknown) => this.env.rec.note(`release of ${slot.slotId} failed: ${toError(err).message}`));
  }
}

/**
 * acquire() with a deadline of its own: one that has not returned by its timeout + workerLostMs + 30 s is
 * counted hung and lost, and abandoned ('lost'). Errors (NO_SLOT, …) are returned, not thrown.
 */
export async function acquireWithDeadline(env: CallEnv, trajectoryId: string, timeoutMs: number): Promise<Slot | Error | 'lost'> {
  const hungMs = timeoutMs + env.workerLostMs + 30_000;
  const pending = env.backend.acquire(trajectoryId, { timeoutMs }).then(
    (slot) => slot,
    (err: unknown) => toError(err),
  );
  const got = await raceDeadline(pending, hungMs);
  if (got !== 'late') return got;
  env.rec.hung++;
  env.rec.lost++;
  env.rec.note(`lost: acquire('${trajectoryId}', { timeoutMs: ${timeoutMs} }) never returned (abandoned after ${hungMs} ms)`);
  return 'lost';
}
