import type { FenceState } from './call-fence.js';
import type { ErrorCode } from '../errors.js';
import type { ExecutionResult, JobItem } from './schemas.js';

type CallIds = Pick<JobItem, 'executionId' | 'slotId'>;

/**
 * The two answers for a call slotq gave up on (worker lost, deadline, job vanished, drain), told apart by
 * `metadata.outcome` (docs/tools-and-results.md "What to score and what to mask"):
 * - `not_run`: it never started, and it is fenced off, so it never will (call-fence.ts): retryable.
 * - `unknown`: it had started, so it may have run and its effects may be in the workspace: not retryable,
 *   and not the model's doing either. Mask it and discard the trajectory (or release the slot with reset
 *   and start over); never retry it blindly in the same workspace.
 */
export type GiveUpOutcome = 'not_run' | 'unknown';

const result = (item: CallIds, code: ErrorCode, error: string, retryable: boolean, outcome: GiveUpOutcome): ExecutionResult => ({
  success: false,
  output: '',
  error,
  executionId: item.executionId,
  slotId: item.slotId,
  metadata: { durationMs: 0, code, retryable, outcome },
});

/** A call that never started and never will: WORKER_LOST (or code), retryable, outcome not_run. */
export const neverRan = (item: CallIds, reason: string, code: ErrorCode = 'WORKER_LOST'): ExecutionResult =>
  result(item, code, `${reason}. This call never started and is fenced off, so it never will: retry it (on a new slot if its worker is gone).`, true, 'not_run');

/** A call that may have run: WORKER_LOST (or code), not retryable, outcome unknown. */
export const mayHaveRun = (item: CallIds, reason: string, code: ErrorCode = 'WORKER_LOST'): ExecutionResult =>
  result(
    item,
    code,
    `${reason}. This call may have run (it had started): its effects may be in the workspace. Do not score it and do not retry it in this workspace: discard the trajectory, or release the slot with resetWorkspace and start over.`,
    false,
    'unknown',
  );

/**
 * The answer for a call of a job given up, from what fencing it found (undefined: it could not be fenced):
 * not run only when it is known never to: the job was fenced before the call started, or its add never
 * reached Redis and now never will; else it may have run.
 */
export function givenUp(item: CallIds & Pick<JobItem, 'index'>, fence: { state: FenceState; started: ReadonlySet<number> } | undefined, added: boolean, reason: string, code: ErrorCode = 'WORKER_LOST'): ExecutionResult {
  const notRun = fence !== undefined && (fence.state === 'fenced' ? !fence.started.has(item.index) : fence.state === 'absent' && !added);
  return notRun ? neverRan(item, reason, code) : mayHaveRun(item, reason, code);
}
