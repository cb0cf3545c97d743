import { callTimeoutS, type JobItem } from '../shared/calls/schemas.js';

/** Per call, on top of its timeout: the out-of-band kill is waited for up to 5 s. */
const KILL_MS = 5000;
/** Of the slack, what a worker keeps in hand when it starts a call (a new session, the one-shot fallback). */
export const MAX_START_MARGIN_MS = 40_000;

/**
 * When a job's calls can be given up (contract §6: every wait has a deadline). Calls on one slot run one
 * after another, across jobs too, so a call's deadline counts the unfinished calls queued before it on its
 * slot: the sum of their timeouts. The job's deadline is its slowest slot's, plus slack for queueing and
 * container start. Jobs leave the clock when they end, so it holds only work in flight.
 */
export class SlotClock {
  /** slotId → jobId → the time that job's calls on the slot may take. */
  private readonly queued = new Map<string, Map<string, number>>();
  constructor(private readonly slackMs: number) {}

  /** How much of the slack must remain when a call starts (half of it, at most MAX_START_MARGIN_MS). */
  get startMarginMs(): number {
    return Math.min(MAX_START_MARGIN_MS, Math.floor(this.slackMs / 2));
  }

  deadline(jobId: string, items: readonly JobItem[], nowMs = Date.now()): number {
    const mine = new Map<string, number>();
    for (const it of items) {
      mine.set(it.slotId, (mine.get(it.slotId) ?? 0) + callTimeoutS(it) * 1000 + KILL_MS);
    }
    let slowestMs = 0;
    for (const [slotId, ms] of mine) {
      const jobs = this.queued.get(slotId) ?? new Map<string, number>();
      const ahead = [...jobs.values()].reduce((a, b) => a + b, 0);
      jobs.set(jobId, ms);
      this.queued.set(slotId, jobs);
      slowestMs = Math.max(slowestMs, ahead + ms);
    }
    return nowMs + slowestMs + this.slackMs;
  }

  /** The job ended (results, failure or deadline): its calls no longer delay anyone. */
  done(jobId: string, items: readonly JobItem[]): void {
    for (const it of items) {
      const jobs = this.queued.get(it.slotId);
      jobs?.delete(jobId);
      if (jobs?.size === 0) this.queued.delete(it.slotId);
    }
  }
}
