import { z } from 'zod';
import { errorCodeSchema, pathArgSchema, timeoutArgSchema } from './schemas.js';

/** Ceilings (contract §5): larger limits are clamped to these, as in the original. */
export const ARTIFACT_MAX_BYTES = 5_000_000;
export const ARTIFACT_MAX_ENTRIES = 5_000;

/**
 * Internal tool names: the artifact helpers travel as ordinary calls of these tools, so they reach the
 * slot's worker in the same FIFO as its other calls. Their ExecutionResult carries `metadata.artifact`.
 */
export const ARTIFACT_TOOLS = { read: 'artifact_read', list: 'artifact_list', archive: 'artifact_archive' } as const;
export type ArtifactToolName = (typeof ARTIFACT_TOOLS)[keyof typeof ARTIFACT_TOOLS];
export const ARTIFACT_TOOL_NAMES: readonly ArtifactToolName[] = Object.values(ARTIFACT_TOOLS);
export const isArtifactTool = (tool: string): tool is ArtifactToolName => (ARTIFACT_TOOL_NAMES as readonly string[]).includes(tool);

/**
 * A numeric limit: a positive integer; values above the ceiling are clamped to it (SlotBackend sends
 * Infinity as MAX_SAFE_INTEGER, JSON having no Infinity). Zero, negatives, fractions, NaN, strings and
 * anything else are INVALID_ARGS (the original silently turned them into 1 or the ceiling, hiding bugs).
 */
const limitArg = (name: string, ceiling: number) =>
  z
    .custom<number>((v) => Number.isSafeInteger(v) && (v as number) >= 1, `${name} must be a positive integer (values above ${ceiling} are clamped to it)`)
    .transform((v) => Math.min(v, ceiling));

/** Trimmed and lower-cased before the check, as in the original. */
const lowerEnum = <const T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((s) => s.trim().toLowerCase())
    .pipe(z.enum(values));

const dirPathArg = pathArgSchema.default('.');

export const readArtifactArgsSchema = z.object({
  path: pathArgSchema,
  encoding: lowerEnum(['text', 'base64']).default('text'),
  maxBytes: limitArg('maxBytes', ARTIFACT_MAX_BYTES).default(ARTIFACT_MAX_BYTES),
  includeSha256: z.boolean().default(false),
  timeout: timeoutArgSchema,
});
export const listArtifactsArgsSchema = z.object({
  path: dirPathArg,
  recursive: z.boolean().default(false),
  maxEntries: limitArg('maxEntries', ARTIFACT_MAX_ENTRIES).default(ARTIFACT_MAX_ENTRIES),
  timeout: timeoutArgSchema,
});
export const archiveArtifactsArgsSchema = z.object({
  path: dirPathArg,
  archiveFormat: lowerEnum(['tar.gz', 'tgz']).default('tar.gz'),
  maxBytes: limitArg('maxBytes', ARTIFACT_MAX_BYTES).default(ARTIFACT_MAX_BYTES),
  maxEntries: limitArg('maxEntries', ARTIFACT_MAX_ENTRIES).default(ARTIFACT_MAX_ENTRIES),
  timeout: timeoutArgSchema,
});
export type ReadArtifactArgs = z.infer<typeof readArtifactArgsSchema>;
export type ListArtifactsArgs = z.infer<typeof listArtifactsArgsSchema>;
export type ArchiveArtifactsArgs = z.infer<typeof archiveArtifactsArgsSchema>;

/** Options of the SlotBackend helpers (contract §2); timeoutS travels as the call's `timeout`. */
export interface ReadArtifactOptions {
  encoding?: 'text' | 'base64';
  maxBytes?: number;
  includeSha256?: boolean;
  timeoutS?: number;
}
export interface ListArtifactsOptions {
  recursive?: boolean;
  maxEntries?: number;
  timeoutS?: number;
}
export interface ArchiveArtifactsOptions {
  archiveFormat?: 'tar.gz' | 'tgz';
  maxBytes?: number;
  maxEntries?: number;
  timeoutS?: number;
}

const count = z.number().int().nonnegative();

/** What the worker puts in `metadata.artifact` of a successful call (the result minus `success`). */
export const readArtifactPayloadSchema = z.object({
  content: z.string(),
  encoding: z.enum(['text', 'base64']),
  /** True only when bytes were left out (bytes < fileSize). */
  truncated: z.boolean(),
  bytes: count,
  fileSize: count,
  /** Relative to /workspace, after following symlinks. */
  path: z.string(),
  mime: z.string(),
  /** Hex SHA-256 of the whole file (not just the returned bytes), or null when not asked for. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
});
export const artifactEntrySchema = z.object({ path: z.string(), isDir: z.boolean(), size: count, mtimeMs: z.number() });
export const listArtifactsPayloadSchema = z.object({ entries: z.array(artifactEntrySchema), truncated: z.boolean() });
export const archiveArtifactsPayloadSchema = z.object({
  content: z.string(),
  encoding: z.literal('base64'),
  format: z.literal('tar.gz'),
  bytes: count,
  entryCount: count,
  truncated: z.boolean(),
});

/** A helper's per-call failure: never thrown, returned. `bytes` is set for an archive over maxBytes. */
export const artifactFailureSchema = z.object({
  success: z.literal(false),
  error: z.string().min(1),
  code: errorCodeSchema,
  retryable: z.boolean(),
  bytes: count.optional(),
});
const ok = { success: z.literal(true) };
export const readArtifactResultSchema = z.discriminatedUnion('success', [readArtifactPayloadSchema.extend(ok), artifactFailureSchema]);
export const listArtifactsResultSchema = z.discriminatedUnion('success', [listArtifactsPayloadSchema.extend(ok), artifactFailureSchema]);
export const archiveArtifactsResultSchema = z.discriminatedUnion('success', [archiveArtifactsPayloadSchema.extend(ok), artifactFailureSchema]);

export type ReadArtifactPayload = z.infer<typeof readArtifactPayloadSchema>;
export type ListArtifactsPayload = z.infer<typeof listArtifactsPayloadSchema>;
export type ArchiveArtifactsPayload = z.infer<typeof archiveArtifactsPayloadSchema>;
export type ArtifactEntry = z.infer<typeof artifactEntrySchema>;
export type ArtifactFailure = z.infer<typeof artifactFailureSchema>;
export type ReadArtifactResult = z.infer<typeof readArtifactResultSchema>;
export type ListArtifactsResult = z.infer<typeof listArtifactsResultSchema>;
export type ArchiveArtifactsResult = z.infer<typeof archiveArtifactsResultSchema>;
