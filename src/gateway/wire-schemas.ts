import { z } from 'zod';
import { namespaceSchema } from '../shared/registry/affinity.js';
import { egressPolicySchema } from '../shared/calls/egress.js';

/**
 * The gateway's HTTP/JSON wire (contract §9): snake_case, the shapes of the Python seed
 * (`ExecutionResult`, the artifact dicts). Envelopes are strict: an unknown field is a 400.
 * Output schemas have no transforms (the serializer encodes through them).
 */

/** A slot as the gateway hands it out; clients send it back unchanged. */
const slotShape = {
  slot_id: z.string().min(1),
  worker_id: z.string().min(1),
  container_id: z.string(),
  container_addr: z.string(),
  workspace_dir: z.string(),
  trajectory_id: z.string().min(1),
  lease_id: z.string().min(1),
  acquired_at_ms: z.number(),
};
export const wireSlotSchema = z.object(slotShape).meta({ id: 'Slot', description: 'A held slot, as returned by acquire: send it back unchanged' });
/** What a client sends back: extra keys (a client's own `state`, `metadata`) are ignored. */
export const incomingSlotSchema = z.looseObject(slotShape);
export type WireSlot = z.infer<typeof wireSlotSchema>;

/** Envelopes take the slot as any object; a slot that does not parse is a per-call INVALID_ARGS result. */
const slotField = z.record(z.string(), z.unknown()).describe('a slot object as returned by acquire');
const seconds = z.number().finite();

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().describe('a contract error code (INVALID_ARGS, TOO_LARGE, NO_SLOT, BACKEND_STOPPED, ...) or UNAUTHORIZED'),
      message: z.string(),
      retryable: z.boolean(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const openSessionBodySchema = z.strictObject({
  ttl_s: z.number().min(1).max(86_400).optional().describe('idle time after which the session is closed and its slots released with reset'),
  client: z.string().max(200).optional().describe('free-form client name, for logs'),
  namespace: namespaceSchema
    .optional()
    .describe('sessions that name the same namespace share trajectory IDs (and so slots): only for cooperating clients of one training run; without it a trajectory ID belongs to this session alone'),
});
export const sessionSchema = z.object({
  session_id: z.string(),
  ttl_s: z.number(),
  default_timeout_s: z.number(),
  producer_id: z.string(),
  namespace: z.string().optional(),
});

export const emptyBodySchema = z.strictObject({}).optional();
export const closeSessionBodySchema = z.strictObject({ purge: z.boolean().default(false) }).optional();
export const okSchema = z.object({ ok: z.literal(true) });
export const keepaliveSchema = z.object({ ok: z.literal(true), ttl_s: z.number() });

export const acquireBodySchema = z.strictObject({
  trajectory_id: z.string().min(1).max(256).nullish(),
  timeout_s: seconds.positive().nullish().describe('how long to wait for a free slot (default 60, at most 3600)'),
  image: z.string().min(1).nullish().describe("the trajectory's own image (an on-demand container; must be in the workers' SLOTQ_IMAGES)"),
  network: egressPolicySchema.nullish().describe("the slot's egress policy: 'none' or {allow: ['host:port', 'cidr', ...]}, enforced by its worker; refused (INVALID_ARGS) where it cannot be"),
});
export const acquireResponseSchema = z.object({ slot: wireSlotSchema });

export const releaseBodySchema = z.strictObject({ slot: slotField, reset_workspace: z.boolean().default(false) });

export const callSchema = z.strictObject({
  slot: slotField,
  tool: z.string(),
  args: z.record(z.string(), z.unknown()).default({}),
});
export const executeBatchBodySchema = z.strictObject({
  requests: z.array(callSchema),
  timeout_s: seconds.nullish(),
});
export const wireResultSchema = z
  .object({
    success: z.boolean(),
    output: z.string(),
    error: z.string(),
    execution_id: z.string(),
    slot_id: z.string(),
    metadata: z.record(z.string(), z.unknown()).describe('exit_code, timeout (with exit_code -1), stateful, duration_ms, truncated, code, retryable, ...'),
  })
  .meta({ id: 'ExecutionResult' });
export type WireResult = z.infer<typeof wireResultSchema>;
export const executeBatchResponseSchema = z.object({ results: z.array(wireResultSchema) });

const limit = z.number().nullish();
export const readArtifactBodySchema = z.strictObject({
  slot: slotField,
  path: z.string(),
  encoding: z.string().default('text'),
  max_bytes: limit,
  include_sha256: z.boolean().default(false),
  timeout_s: seconds.nullish(),
});
export const listArtifactsBodySchema = z.strictObject({
  slot: slotField,
  path: z.string().default('.'),
  recursive: z.boolean().default(false),
  max_entries: limit,
  timeout_s: seconds.nullish(),
});
export const archiveArtifactsBodySchema = z.strictObject({
  slot: slotField,
  path: z.string().default('.'),
  archive_format: z.string().default('tar.gz'),
  max_bytes: limit,
  max_entries: limit,
  timeout_s: seconds.nullish(),
});

/** Set on failures only. */
const failure = { code: z.string().optional(), retryable: z.boolean().optional() };
const count = z.number().int().nonnegative();
export const wireReadArtifactSchema = z.object({
  success: z.boolean(),
  content: z.string(),
  error: z.string(),
  encoding: z.string(),
  truncated: z.boolean(),
  bytes: count,
  file_size: count.nullable(),
  path: z.string(),
  mime: z.string().nullable(),
  sha256: z.string().nullable(),
  ...failure,
});
export const wireListArtifactsSchema = z.object({
  success: z.boolean(),
  entries: z.array(z.object({ path: z.string(), is_dir: z.boolean(), size: count, mtime: z.number().describe('seconds since the epoch') })),
  truncated: z.boolean(),
  error: z.string(),
  ...failure,
});
export const wireArchiveArtifactsSchema = z.object({
  success: z.boolean(),
  content: z.string(),
  encoding: z.literal('base64'),
  format: z.literal('tar.gz'),
  bytes: count,
  entry_count: count,
  truncated: z.boolean(),
  error: z.string(),
  ...failure,
});
export type WireReadArtifact = z.infer<typeof wireReadArtifactSchema>;
export type WireListArtifacts = z.infer<typeof wireListArtifactsSchema>;
export type WireArchiveArtifacts = z.infer<typeof wireArchiveArtifactsSchema>;

export const healthSchema = z.object({ status: z.enum(['ok', 'degraded']), redis: z.boolean(), sessions: z.number().int(), error: z.string().optional() });
export const sessionParamsSchema = z.object({ session_id: z.string().min(1).max(128) });
