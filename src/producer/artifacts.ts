import type { z } from 'zod';
import {
  ARTIFACT_TOOLS,
  archiveArtifactsPayloadSchema,
  listArtifactsPayloadSchema,
  readArtifactPayloadSchema,
  type ArchiveArtifactsOptions,
  type ArchiveArtifactsResult,
  type ArtifactFailure,
  type ArtifactToolName,
  type ListArtifactsOptions,
  type ListArtifactsResult,
  type ReadArtifactOptions,
  type ReadArtifactResult,
} from '../shared/calls/artifact-schemas.js';
import { isRetryable } from '../shared/errors.js';
import { describeZodError, type ExecutionResult } from '../shared/calls/schemas.js';

/** One artifact call as the tool request SlotBackend sends: [tool, args]. */
export type ArtifactCall = readonly [ArtifactToolName, Record<string, unknown>];

/** Infinity is "no limit": above every ceiling, so clamped; JSON cannot carry it, MAX_SAFE_INTEGER can. */
const wire = (v: unknown): unknown => (v === Infinity ? Number.MAX_SAFE_INTEGER : v);

/** Copies the options that are set (undefined ones are left out; the worker validates the values). */
function argsOf(base: Record<string, unknown>, opts: object | null | undefined, keys: readonly string[]): Record<string, unknown> {
  const o = (typeof opts === 'object' && opts !== null ? opts : {}) as Record<string, unknown>;
  const args: Record<string, unknown> = { ...base };
  for (const k of keys) if (o[k] !== undefined) args[k] = wire(o[k]);
  if (o['timeoutS'] !== undefined) args['timeout'] = o['timeoutS'];
  return args;
}
const withPath = (path: unknown): Record<string, unknown> => (path === undefined ? {} : { path });

export const readArtifactCall = (path: unknown, opts?: ReadArtifactOptions): ArtifactCall => [
  ARTIFACT_TOOLS.read,
  argsOf({ path }, opts, ['encoding', 'maxBytes', 'includeSha256']),
];
export const listArtifactsCall = (path: unknown, opts?: ListArtifactsOptions): ArtifactCall => [
  ARTIFACT_TOOLS.list,
  argsOf(withPath(path), opts, ['recursive', 'maxEntries']),
];
export const archiveArtifactsCall = (path: unknown, opts?: ArchiveArtifactsOptions): ArtifactCall => [
  ARTIFACT_TOOLS.archive,
  argsOf(withPath(path), opts, ['archiveFormat', 'maxBytes', 'maxEntries']),
];

function toFailure(r: ExecutionResult): ArtifactFailure {
  const code = r.metadata.code ?? 'INTERNAL';
  const bytes = r.metadata['bytes'];
  return {
    success: false,
    error: r.error || `Artifact call failed (${code})`,
    code,
    retryable: r.metadata.retryable ?? isRetryable(code),
    ...(typeof bytes === 'number' ? { bytes } : {}),
  };
}

/** Turns the call's ExecutionResult into the helper's result, checking the payload against its schema. */
function toArtifactResult<S extends z.ZodType<object>>(r: ExecutionResult, schema: S): (z.output<S> & { success: true }) | ArtifactFailure {
  if (!r.success) return toFailure(r);
  const parsed = schema.safeParse(r.metadata['artifact']);
  if (!parsed.success) {
    return { success: false, error: `Invalid artifact response from the worker: ${describeZodError(parsed.error)}`, code: 'INTERNAL', retryable: true };
  }
  return { ...parsed.data, success: true };
}

export const toReadArtifactResult = (r: ExecutionResult): ReadArtifactResult => toArtifactResult(r, readArtifactPayloadSchema);
export const toListArtifactsResult = (r: ExecutionResult): ListArtifactsResult => toArtifactResult(r, listArtifactsPayloadSchema);
export const toArchiveArtifactsResult = (r: ExecutionResult): ArchiveArtifactsResult => toArtifactResult(r, archiveArtifactsPayloadSchema);
