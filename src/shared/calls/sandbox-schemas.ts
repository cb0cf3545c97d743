import { z } from 'zod';
import { egressPolicySchema } from './egress.js';
import { MAX_COMMAND_CHARS, MAX_PATH_CHARS, timeoutArgSchema } from './schemas.js';

/**
 * The harness's surface (docs/harnesses.md): exec with cwd, env, user and stdin, and bytes and directories
 * at any path of the container. The harness is trusted code that owns the slot; the model is not, so these
 * never appear among the model's tools (whose /workspace path rules stay as they are).
 *
 * Like the artifact helpers, each operation travels as an ordinary call of an internal tool, in the slot's
 * FIFO. Large transfers are split into TRANSFER_CHUNK_BYTES calls: no job or result in Redis carries more.
 */
export const SANDBOX_TOOLS = {
  exec: 'sandbox_exec',
  read: 'sandbox_read',
  write: 'sandbox_write',
  pack: 'sandbox_pack',
  unpack: 'sandbox_unpack',
  discard: 'sandbox_discard',
  network: 'sandbox_network',
} as const;
export type SandboxToolName = (typeof SANDBOX_TOOLS)[keyof typeof SANDBOX_TOOLS];
const NAMES: readonly string[] = Object.values(SANDBOX_TOOLS);
export const isSandboxTool = (tool: string): tool is SandboxToolName => NAMES.includes(tool);

/** Raw bytes per transfer call (base64 in the job or the result: ~2.8 MB). */
export const TRANSFER_CHUNK_BYTES = 2 * 1024 * 1024;
/** Transfer calls of one file or archive in flight at once (the slot runs them in order; this hides the round trips). */
export const TRANSFER_WINDOW = 4;
/** Largest file readFile returns and largest archive download produces, by default (SLOTQ_TRANSFER_MAX_MB). */
export const TRANSFER_MAX_BYTES = 1024 * 1024 * 1024;
/** Bytes of an exec's stdin sent with the call. */
export const EXEC_STDIN_MAX_BYTES = TRANSFER_CHUNK_BYTES;

/** An absolute path anywhere in the container. */
export const absPathSchema = z
  .string()
  .min(1, 'path must not be empty')
  .max(MAX_PATH_CHARS, `path is longer than ${MAX_PATH_CHARS} characters`)
  .refine((p) => !p.includes('\0'), 'path must not contain NUL bytes')
  .refine((p) => p.startsWith('/'), 'path must be absolute (start with /)');
/** A user name or a numeric uid (optionally uid:gid), as docker exec -u takes it. */
export const execUserSchema = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^([a-z_][a-z0-9_.-]{0,31}\$?|\d+)(:([a-z_][a-z0-9_.-]{0,31}|\d+))?$/i, 'user must be a user name or a uid (optionally :group)'),
]);
const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _ (not starting with a digit)');
const envValue = z.string().refine((v) => !v.includes('\0'), 'env values must not contain NUL bytes');
const argSchema = z.string().max(MAX_COMMAND_CHARS).refine((a) => !a.includes('\0'), 'arguments must not contain NUL bytes');
/** Base64 of at most `max` bytes. */
const base64 = (max: number) =>
  z
    .string()
    .max(Math.ceil(max / 3) * 4 + 4, `more than ${max} bytes`)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
/** A transfer's part-file ID: chosen by the producer, one per file or archive in flight. */
const partId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'part must be 8-64 characters of [A-Za-z0-9_-]');

export const execArgsSchema = z.object({
  /** A string runs under the image's `sh -c`; an array runs as argv, with no shell. */
  command: z.union([
    argSchema.min(1, 'command must not be empty'),
    z.array(argSchema).min(1, 'command must have at least the program').max(10_000),
  ]),
  cwd: absPathSchema.optional(),
  env: z.record(envKey, envValue).optional(),
  user: execUserSchema.optional(),
  /** base64 */
  stdin: base64(EXEC_STDIN_MAX_BYTES).optional(),
  timeout: timeoutArgSchema,
});
export const readArgsSchema = z.object({
  path: absPathSchema,
  offset: z.number().int().nonnegative().default(0),
  length: z.number().int().positive().max(TRANSFER_CHUNK_BYTES).default(TRANSFER_CHUNK_BYTES),
  /** Read the part file of this transfer instead of `path` (download). */
  part: partId.optional(),
  user: execUserSchema.optional(),
  timeout: timeoutArgSchema,
});
export const writeArgsSchema = z.object({
  /** Where the bytes end up (absent for an upload's archive, which sandbox_unpack places). */
  path: absPathSchema.optional(),
  data: base64(TRANSFER_CHUNK_BYTES),
  offset: z.number().int().nonnegative().default(0),
  /** The transfer's part file: chunks land there and the last (final) moves it to `path`. Absent: one call writes `path` whole. */
  part: partId.optional(),
  final: z.boolean().default(true),
  mode: z.number().int().min(0).max(0o7777).optional(),
  user: execUserSchema.optional(),
  timeout: timeoutArgSchema,
});
export const packArgsSchema = z.object({ path: absPathSchema, part: partId, user: execUserSchema.optional(), timeout: timeoutArgSchema });
export const unpackArgsSchema = z.object({ target: absPathSchema, part: partId, user: execUserSchema.optional(), timeout: timeoutArgSchema });
export const networkArgsSchema = z.object({ policy: egressPolicySchema, timeout: timeoutArgSchema });
export const discardArgsSchema = z.object({ part: partId, user: execUserSchema.optional(), timeout: timeoutArgSchema });
export type ExecArgs = z.infer<typeof execArgsSchema>;
export type ReadArgs = z.infer<typeof readArgsSchema>;
export type WriteArgs = z.infer<typeof writeArgsSchema>;
export type PackArgs = z.infer<typeof packArgsSchema>;
export type UnpackArgs = z.infer<typeof unpackArgsSchema>;
export type DiscardArgs = z.infer<typeof discardArgsSchema>;

export const sandboxArgsSchemas = {
  [SANDBOX_TOOLS.exec]: execArgsSchema,
  [SANDBOX_TOOLS.read]: readArgsSchema,
  [SANDBOX_TOOLS.write]: writeArgsSchema,
  [SANDBOX_TOOLS.pack]: packArgsSchema,
  [SANDBOX_TOOLS.unpack]: unpackArgsSchema,
  [SANDBOX_TOOLS.discard]: discardArgsSchema,
  [SANDBOX_TOOLS.network]: networkArgsSchema,
} as const satisfies Record<SandboxToolName, z.ZodType>;

/** An exec's answer, in the call result's metadata.exec. Streams are each capped (head and tail kept). */
export const execPayloadSchema = z.object({
  exitCode: z.number(),
  /** base64 of the kept bytes (head, then tail when the middle was cut) */
  stdout: z.string(),
  stderr: z.string(),
  stdoutBytes: z.number(),
  stderrBytes: z.number(),
  timedOut: z.boolean(),
  truncated: z.boolean(),
});
export type ExecPayload = z.infer<typeof execPayloadSchema>;
/** A read's answer, in metadata.transfer: the file's size and the chunk's bytes (base64). */
export const readPayloadSchema = z.object({ size: z.number(), data: z.string() });
/** A pack's answer: the archive's size in its part file. */
export const packPayloadSchema = z.object({ size: z.number() });
