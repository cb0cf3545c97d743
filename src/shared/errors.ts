/** Stable error codes (contract §3). */
export const ERROR_CODES = [
  'TOOL_FAILED',
  'TIMEOUT',
  'INVALID_ARGS',
  'UNKNOWN_TOOL',
  'PATH_OUTSIDE_WORKSPACE',
  'NOT_FOUND',
  'PERMISSION_DENIED',
  'TOO_LARGE',
  'LEASE_LOST',
  'WORKER_LOST',
  'SLOT_BROKEN',
  'NO_SLOT',
  'BACKEND_STOPPED',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
export const ErrorCode = Object.fromEntries(ERROR_CODES.map((c) => [c, c])) as { readonly [K in ErrorCode]: K };

/** Infrastructure failures a training loop may retry or mask instead of scoring. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['WORKER_LOST', 'SLOT_BROKEN', 'NO_SLOT', 'INTERNAL', 'BACKEND_STOPPED']);
export const isRetryable = (code: ErrorCode): boolean => RETRYABLE.has(code);

export class SlotqError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Extra fields for a call result's metadata (e.g. `cause`). */
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? isRetryable(code);
    this.details = opts.details ?? {};
  }
}

/**
 * Something a command did inside its own slot broke the call (it killed slotq's executor session, say).
 * Never retryable: in RL a policy would otherwise learn to turn its failures into masked ones.
 */
export class InsideSlotError extends SlotqError {
  constructor(message: string, cause: string) {
    super('TOOL_FAILED', message, { retryable: false, details: { cause } });
  }
}

export class SlotUnavailableError extends SlotqError {
  constructor(message: string) {
    super('NO_SLOT', message);
  }
}
export class BackendStoppedError extends SlotqError {
  constructor(message = 'SlotBackend is not started: call start() first (or it was stopped)') {
    super('BACKEND_STOPPED', message);
  }
}
export class LeaseLostError extends SlotqError {
  constructor(message: string) {
    super('LEASE_LOST', message);
  }
}
export class InvalidArgsError extends SlotqError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('INVALID_ARGS', message, opts);
  }
}
export class ConfigError extends SlotqError {
  constructor(message: string) {
    super('INVALID_ARGS', message);
  }
}
export class SlotBrokenError extends SlotqError {
  constructor(message: string, opts: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {}) {
    super('SLOT_BROKEN', message, opts);
  }
}
/** A worker cannot use its image (missing, unpullable, or lacking what slotq needs): raised at start, naming it. */
export class ImageUnusableError extends SlotqError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('INVALID_ARGS', message, { ...opts, retryable: false });
  }
}
export class InternalError extends SlotqError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('INTERNAL', message, opts);
  }
}

/** Normalises anything thrown into an Error. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}

/** The error's code when it is a SlotqError, else INTERNAL. */
export const codeOf = (err: unknown): ErrorCode => (err instanceof SlotqError ? err.code : 'INTERNAL');
