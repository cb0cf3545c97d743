import type {
  ArchiveArtifactsOptions,
  ArchiveArtifactsResult,
  ListArtifactsOptions,
  ListArtifactsResult,
  ReadArtifactOptions,
  ReadArtifactResult,
} from './artifact-schemas.js';
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
  /** Artifact helpers (contract §5): per-call problems are `{ success: false, error, code }`, never thrown. */
  readArtifact(slot: Slot, path: string, opts?: ReadArtifactOptions): Promise<ReadArtifactResult>;
  listArtifacts(slot: Slot, path?: string, opts?: ListArtifactsOptions): Promise<ListArtifactsResult>;
  archiveArtifacts(slot: Slot, path?: string, opts?: ArchiveArtifactsOptions): Promise<ArchiveArtifactsResult>;
}
