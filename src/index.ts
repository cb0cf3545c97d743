/** slotq: the tool-execution layer for agent RL training. */
export { SlotBackend, type SlotBackendOptions } from './producer/slot-backend.js';
export { SlotWorker, type SlotWorkerOptions } from './worker/slot-worker.js';
export type { ToolBackend, ToolRequest } from './shared/tool-backend.js';
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
} from './shared/schemas.js';
export { loadConfig, CONFIG_ENV_VARS, type SlotqConfig, type SlotqOptions } from './shared/config.js';
export { createLogger } from './shared/logger.js';
