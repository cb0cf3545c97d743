import { isRetryable, type ErrorCode } from '../../shared/errors.js';
import type { ExecutionResult, JobItem } from '../../shared/calls/schemas.js';

type CallIds = Pick<JobItem, 'executionId' | 'slotId'>;

/** A failed call: `code` always set, `retryable` from the code unless metadata says otherwise. */
export function failure(item: CallIds, code: ErrorCode, error: string, metadata: Record<string, unknown> = {}): ExecutionResult {
  return {
    success: false,
    output: '',
    error,
    executionId: item.executionId,
    slotId: item.slotId,
    metadata: { durationMs: 0, ...metadata, code, retryable: typeof metadata['retryable'] === 'boolean' ? metadata['retryable'] : isRetryable(code) },
  };
}

export function succeed(item: CallIds, output: string, durationMs: number, metadata: Record<string, unknown>): ExecutionResult {
  return { success: true, output, error: '', executionId: item.executionId, slotId: item.slotId, metadata: { durationMs, ...metadata } };
}
