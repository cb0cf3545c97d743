/** slotq: the tool-execution layer for agent RL training. */
export { SlotBackend, type SlotBackendOptions } from './producer/slot-backend.js';
export { SlotWorker, type SlotWorkerOptions } from './worker/slot-worker.js';
export type { WorkerEventMap, CallDoneEvent, ContainerCreatedEvent, ContainerFailedEvent } from './worker/worker-events.js';
export type { ToolBackend, ToolRequest } from './shared/calls/tool-backend.js';
export type { ExecOptions, ExecResult, FileOptions } from './producer/sandbox.js';
export type { EgressPolicy } from './shared/calls/egress.js';
export { SANDBOX_TOOLS, TRANSFER_CHUNK_BYTES, TRANSFER_MAX_BYTES } from './shared/calls/sandbox-schemas.js';
export {
  ERROR_CODES,
  ErrorCode,
  SlotqError,
  SlotUnavailableError,
  BackendStoppedError,
  LeaseLostError,
  InvalidArgsError,
  ConfigError,
  SlotBrokenError,
  InternalError,
  isRetryable,
  toError,
} from './shared/errors.js';
export {
  slotSchema,
  executionResultSchema,
  bashArgsSchema,
  readFileArgsSchema,
  writeFileArgsSchema,
  toolArgsSchemas,
  jobPayloadSchema,
  callsJobSchema,
  resetJobSchema,
  TOOL_NAMES,
  TOOL_ALIASES,
  WORKSPACE_DIR,
  type Slot,
  type ExecutionResult,
  type ToolName,
  type BashArgs,
  type ReadFileArgs,
  type WriteFileArgs,
  type JobPayload,
} from './shared/calls/schemas.js';
export {
  ARTIFACT_MAX_BYTES,
  ARTIFACT_MAX_ENTRIES,
  ARTIFACT_TOOLS,
  readArtifactArgsSchema,
  listArtifactsArgsSchema,
  archiveArtifactsArgsSchema,
  readArtifactPayloadSchema,
  listArtifactsPayloadSchema,
  archiveArtifactsPayloadSchema,
  artifactEntrySchema,
  artifactFailureSchema,
  readArtifactResultSchema,
  listArtifactsResultSchema,
  archiveArtifactsResultSchema,
  type ArtifactToolName,
  type ReadArtifactArgs,
  type ListArtifactsArgs,
  type ArchiveArtifactsArgs,
  type ReadArtifactOptions,
  type ListArtifactsOptions,
  type ArchiveArtifactsOptions,
  type ArtifactEntry,
  type ArtifactFailure,
  type ReadArtifactResult,
  type ListArtifactsResult,
  type ArchiveArtifactsResult,
} from './shared/calls/artifact-schemas.js';
export { loadConfig, CONFIG_ENV_VARS, type SlotqConfig, type SlotqOptions } from './shared/config.js';
export { createLogger } from './shared/logger.js';
