import type { SlotBackend } from '../../src/producer/slot-backend.js';
import { raceDeadline } from '../../src/shared/deadline.js';
import { SlotqError, toError } from '../../src/shared/errors.js';
import type { ExecutionResult, Slot } from '../../src/shared/calls/schemas.js';
import type { Recorder } from './recorder.js';

/** Codes a training loop retries on a freshly acquired slot (plus anything the result marks `retryable`). */
export const RETRY_CODES: ReadonlySet<string> = new Set(['WORKER_LOST', 'SLOT_BROKEN', 'LEASE_LOST', 'NO_SLOT']);
/** How long past its hung threshold a call may still answer before it counts as lost too. */
const LOST_GRACE_MS = 60_000;
const DEFAULT_TIMEOUT_S = 30;

/** One tool call and the check its result must pass. */
export interface CallSpec {
  tool: string;
  args: Record<string, unknown>;
  /** Whether the result is the right one. A failed result passing it is an expected failure (abuse). */
  check: (r: ExecutionResult) => boolean;
  timeoutS?: number;
  /** Which failures are retried on a fresh slot (default: RETRY_CODES, or any result marked retryable). */
  retryIf?: (r: ExecutionResult) => boolean;
  /** Sees every result (for reports). */
  onResult?: (r: ExecutionResult) => void;
}

export type Outcome = 'ok' | 'retry' | 'failed';

export interface CallEnv {
  backend: SlotBackend;
  rec: Recorder;
  workerLostMs: number;
}

const isRetry = (r: ExecutionResult): boolean => RETRY_CODES.has(String(r.metadata.code)) || r.metadata.retryable === true;
const describe = (spec: CallSpec, r: ExecutionResult): string => `${spec.tool} ${JSON.stringify(spec.args).slice(0, 80)} → ${r.metadata.code ?? 'WRONG_RESULT'}: ${r.error || JSON.stringify(r.output.slice(0, 120))}`;

/** A call is hung when its result takes longer than its timeout (plus those queued before it on its slot) + workerLostMs + 30 s. */
export function hungThresholdMs(items: ReadonlyArray<readonly [Slot, CallSpec]>, workerLostMs: number): number {
  const perSlot = new Map<string, number>();
  for (const [slot, spec] of items) perSlot.set(slot.slotId, (perSlot.get(slot.slotId) ?? 0) + (spec.timeoutS ?? DEFAULT_TIMEOUT_S) * 1000);
  return Math.max(...perSlot.values()) + workerLostMs + 30_000;
}


/**
 * Runs one batch and judges every result: lost (no result, or a second one), hung (too slow), retried
 * (a retryable infrastructure failure), failed (a wrong result), or ok. Never throws.
 */
export async function checkedBatch(env: CallEnv, items: ReadonlyArray<readonly [Slot, CallSpec]>): Promise<Outcome[]> {
  const { rec } = env;
  rec.calls += items.length;
  const t0 = Date.now();
  const p = env.backend.executeBatch(items.map(([slot, s]) => [slot, s.tool, { ...s.args, timeout: s.timeoutS ?? DEFAULT_TIMEOUT_S }] as const));
  const settled = p.then(
    (results) => results,
    (err: unknown) => toError(err),
  );
  let results = await raceDeadline(settled, hungThresholdMs(items, env.workerLostMs));
  if (results === 'late') {
    rec.hung += items.length;
    rec.note(`hung: a batch of ${items.length} call(s) had no results after ${Date.now() - t0} ms (${items[0]?.[1].tool} on ${items[0]?.[0].slotId})`);
    results = await raceDeadline(settled, LOST_GRACE_MS);
  }
  if (results === 'late' || results instanceof Error) {
    rec.lost += items.length;
    rec.note(`lost: a batch of ${items.length} call(s) ${results === 'late' ? 'never returned' : `threw ${results instanceof SlotqError ? results.code : ''} ${results.message}`}`);
    return items.map(() => 'retry');
  }
  const endedMs = Date.now();
  return items.map(([slot, spec], i) => judge(rec, slot, spec, results[i], t0, endedMs));
}

function judge(rec: Recorder, slot: Slot, spec: CallSpec, r: ExecutionResult | undefined, startedMs: number, endedMs: number): Outcome {
  if (!r || !rec.firstResult(r.executionId)) {
    rec.lost++;
    rec.note(`lost: ${spec.tool} on ${slot.slotId} got ${r ? `a second result for execution ${r.executionId}` : 'no result'}`);
    return 'retry';
  }
  spec.onResult?.(r);
  if (r.success && spec.check(r)) {
    rec.success(slot, startedMs, endedMs);
    return 'ok';
  }
  if (!r.success && (spec.retryIf ?? isRetry)(r)) {
    rec.retry(String(r.metadata.code));
    return 'retry';
  }
  if (!r.success && spec.check(r)) return 'ok';
  rec.failed++;
  rec.note(`failed: ${describe(spec, r)}`);
  return 'failed';
}
