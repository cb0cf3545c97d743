import { z } from 'zod';
import { ERROR_CODES } from '../errors.js';

export const WORKSPACE_DIR = '/workspace';

/** A held slot, as handed out by SlotBackend.acquire. */
export const slotSchema = z.object({
  slotId: z.string().min(1),
  workerId: z.string().min(1),
  containerId: z.string(),
  workspaceDir: z.string(),
  trajectoryId: z.string().min(1),
  leaseId: z.string().min(1),
  acquiredAtMs: z.number(),
});
export type Slot = z.infer<typeof slotSchema>;

export const TOOL_NAMES = ['bash', 'bash_stateful', 'read_file', 'write_file', 'tmux'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];
export const TOOL_ALIASES: Readonly<Record<string, ToolName>> = { terminal: 'bash', terminal_stateful: 'bash_stateful' };

/** Per-call timeouts are clamped to this range (contract §4). */
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 3600;
export const clampTimeoutS = (s: number): number => Math.min(MAX_TIMEOUT_S, Math.max(MIN_TIMEOUT_S, s));

/** A call's timeout in seconds: its own `timeout` argument, else the batch's, clamped (contract §4). */
export const callTimeoutS = (item: { args: Record<string, unknown>; timeoutS: number }): number =>
  clampTimeoutS(typeof item.args['timeout'] === 'number' ? item.args['timeout'] : item.timeoutS);

export const MAX_PATH_CHARS = 4096;
export const MAX_COMMAND_CHARS = 1_000_000;

/** A workspace path argument (tools and artifact helpers): non-empty, at most MAX_PATH_CHARS, no NUL. */
export const pathArgSchema = z
  .string()
  .min(1, 'path must not be empty')
  .max(MAX_PATH_CHARS, `path is longer than ${MAX_PATH_CHARS} characters`)
  .refine((p) => !p.includes('\0'), 'path must not contain NUL bytes');
/** A per-call timeout in seconds (clamped to 1..3600 by the worker). */
/** Seconds; any finite number, clamped to 1..3600 where it is used (contract §4). */
export const timeoutArgSchema = z.number().finite().optional();
const commandArg = z
  .string()
  .min(1, 'command must not be empty')
  .max(MAX_COMMAND_CHARS, `command is longer than ${MAX_COMMAND_CHARS} characters`)
  .refine((c) => !c.includes('\0'), 'command must not contain NUL bytes');

/**
 * Policy arguments the original's executor adds to every call (contract §4). Accepted; honoured where the
 * slot can honour them, otherwise the call is refused with a result that says why; never ignored.
 */
export const policyArgs = {
  allow_network: z.boolean().optional(),
  require_sandbox: z.boolean().optional(),
  require_stateful_sandbox: z.boolean().optional(),
};
export const bashArgsSchema = z.object({ command: commandArg, timeout: timeoutArgSchema, ...policyArgs });
const seconds = z.number().finite().min(0).max(MAX_TIMEOUT_S);
/** The original's tmux tool (original-system.md §3.5): one tmux session per slot for TUI-style work. */
export const tmuxArgsSchema = z.object({
  action: z.enum(['start', 'send_keys', 'capture', 'stream', 'stop']).default('capture'),
  keys: z.union([z.string().refine((k) => !k.includes('\0'), 'keys must not contain NUL bytes'), z.array(z.string().refine((k) => !k.includes('\0'), 'keys must not contain NUL bytes')).max(1000)]).optional(),
  block: z.boolean().default(false),
  min_wait_s: seconds.optional(),
  max_wait_s: seconds.optional(),
  capture_entire: z.boolean().default(false),
  max_bytes: z.number().finite().optional(),
  reset: z.boolean().default(false),
  pane_width: z.number().finite().optional(),
  pane_height: z.number().finite().optional(),
  timeout: timeoutArgSchema,
  ...policyArgs,
});
export type TmuxArgs = z.infer<typeof tmuxArgsSchema>;
export const readFileArgsSchema = z.object({ path: pathArgSchema });
export const writeFileArgsSchema = z.object({ path: pathArgSchema, content: z.string() });
export type BashArgs = z.infer<typeof bashArgsSchema>;
export type ReadFileArgs = z.infer<typeof readFileArgsSchema>;
export type WriteFileArgs = z.infer<typeof writeFileArgsSchema>;

export const toolArgsSchemas = {
  bash: bashArgsSchema,
  bash_stateful: bashArgsSchema,
  read_file: readFileArgsSchema,
  write_file: writeFileArgsSchema,
  tmux: tmuxArgsSchema,
} as const satisfies Record<ToolName, z.ZodType>;

export const errorCodeSchema = z.enum(ERROR_CODES);

export const executionResultSchema = z.object({
  success: z.boolean(),
  output: z.string(),
  error: z.string(),
  executionId: z.string(),
  slotId: z.string(),
  metadata: z.looseObject({
    exitCode: z.number().optional(),
    timedOut: z.boolean().optional(),
    durationMs: z.number(),
    truncated: z.boolean().optional(),
    code: errorCodeSchema.optional(),
    retryable: z.boolean().optional(),
  }),
});
export type ExecutionResult = z.infer<typeof executionResultSchema>;

/** One tool call inside a job. */
export const jobItemSchema = z.object({
  index: z.number().int().nonnegative(),
  executionId: z.string().min(1),
  slotId: z.string().min(1),
  leaseId: z.string().min(1),
  tool: z.string(),
  args: z.record(z.string(), z.unknown()),
  timeoutS: z.number().finite().positive(),
});
export type JobItem = z.infer<typeof jobItemSchema>;

/** A worker's share of a batch (contract §6), version 1. */
export const callsJobSchema = z.object({
  v: z.literal(1),
  kind: z.literal('calls'),
  batchId: z.string().min(1),
  producerId: z.string().min(1),
  items: z.array(jobItemSchema).min(1),
  /** When the producer gives the job up (epoch ms): a call that cannot end by then is never started. */
  deadlineAtMs: z.number().optional(),
  /** Time a call must still have in hand past its own timeout when it starts (session start, fallback). */
  startMarginMs: z.number().nonnegative().optional(),
});
export const resetJobSchema = z.object({
  v: z.literal(1),
  kind: z.literal('reset'),
  slotId: z.string().min(1),
});
/** Create a container of an image for a waiter (acquire with image); its slot goes to the image's first waiter. */
export const provisionJobSchema = z.object({
  v: z.literal(1),
  kind: z.literal('provision'),
  image: z.string().min(1),
  waiterId: z.string().min(1),
});
export const jobPayloadSchema = z.discriminatedUnion('kind', [callsJobSchema, resetJobSchema, provisionJobSchema]);
export type ProvisionJob = z.infer<typeof provisionJobSchema>;
export type CallsJob = z.infer<typeof callsJobSchema>;
export type ResetJob = z.infer<typeof resetJobSchema>;
export type JobPayload = z.infer<typeof jobPayloadSchema>;

/** Messages a producer receives in its inbox list. */
export const inboxMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('results'), jobId: z.string(), results: z.array(z.tuple([z.number(), executionResultSchema])) }),
  z.object({ t: z.literal('grant'), waiterId: z.string(), slot: z.record(z.string(), z.string()) }),
  /** An acquire with image that cannot be served (image refused or unusable; a pull timed out). */
  z.object({ t: z.literal('refused'), waiterId: z.string(), code: z.enum(ERROR_CODES), message: z.string(), retryable: z.boolean() }),
]);
export type InboxMessage = z.infer<typeof inboxMessageSchema>;

/** Names the first bad field of a zod error: `command: expected string, received number`. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
