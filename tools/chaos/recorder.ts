import type { Slot } from '../../src/shared/calls/schemas.js';

/** A fault's affected capacity: which slots count as "back" when a call on them succeeds. */
export type CapacityMatch = (slot: Slot) => boolean;

interface Watch {
  what: string;
  sinceMs: number;
  eligibleFromMs: number;
  match: CapacityMatch;
}

/** Most failure descriptions kept per scenario (the rest are only counted). */
const MAX_NOTES = 8;

/**
 * What a scenario's calls did: counts (calls, retried, failed, lost, hung), retried calls by code, and
 * recovery times from each injected fault to the first successful call on the capacity it hit.
 */
export class Recorder {
  calls = 0;
  retried = 0;
  failed = 0;
  lost = 0;
  hung = 0;
  readonly retriedByCode = new Map<string, number>();
  readonly recoveriesMs: Array<{ what: string; ms: number }> = [];
  readonly problems: string[] = [];
  private readonly watches: Watch[] = [];
  private readonly executionIds = new Set<string>();

  /**
   * A fault happened at sinceMs: the first successful call on matching slots that started after
   * eligibleFromMs (default sinceMs; later when the fault takes a while, like a Redis restart) ends its recovery.
   */
  watchRecovery(what: string, sinceMs: number, match: CapacityMatch = () => true, eligibleFromMs = sinceMs): void {
    this.watches.push({ what, sinceMs, eligibleFromMs, match });
  }

  /** Faults whose capacity never served a successful call again. */
  get unrecovered(): string[] {
    return this.watches.map((w) => w.what);
  }

  /** The longest recovery, undefined when no fault was injected. */
  get maxRecoveryMs(): number | undefined {
    return this.recoveriesMs.length ? Math.max(...this.recoveriesMs.map((r) => r.ms)) : undefined;
  }

  /** A checked call succeeded on slot: ends the recoveries it satisfies. */
  success(slot: Slot, startedMs: number, endedMs: number): void {
    for (let i = this.watches.length - 1; i >= 0; i--) {
      const w = this.watches[i]!;
      if (startedMs >= w.eligibleFromMs && w.match(slot)) {
        this.recoveriesMs.push({ what: w.what, ms: endedMs - w.sinceMs });
        this.watches.splice(i, 1);
      }
    }
  }

  /** False when this execution ID was seen before: a second result for one call. */
  firstResult(executionId: string): boolean {
    if (this.executionIds.has(executionId)) return false;
    this.executionIds.add(executionId);
    return true;
  }

  retry(code: string): void {
    this.retried++;
    this.retriedByCode.set(code, (this.retriedByCode.get(code) ?? 0) + 1);
  }

  note(problem: string): void {
    if (this.problems.length < MAX_NOTES) this.problems.push(problem.slice(0, 300));
  }

  /** "WORKER_LOST 12, SLOT_BROKEN 1" */
  retriedSummary(): string {
    return [...this.retriedByCode].map(([code, n]) => `${code} ${n}`).join(', ');
  }
}
