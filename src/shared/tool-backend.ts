import type { ExecutionResult, Slot } from './schemas.js';

export type ToolRequest = readonly [slot: Slot, tool: string, args: Record<string, unknown>];

/** The interface training loops program against (contract §2). */
export interface ToolBackend {
  readonly defaultTimeoutS: number | undefined;
  start(): Promise<void>;
  stop(opts?: { purge?: boolean }): Promise<void>;
  acquire(trajectoryId?: string, opts?: { timeoutMs?: number }): Promise<Slot>;
  release(slot: Slot, opts?: { resetWorkspace?: boolean }): Promise<void>;
  executeBatch(requests: ReadonlyArray<ToolRequest>, opts?: { timeoutS?: number }): Promise<ExecutionResult[]>;
}
