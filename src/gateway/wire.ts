import type { ArchiveArtifactsResult, ListArtifactsResult, ReadArtifactResult } from '../shared/calls/artifact-schemas.js';
import { isRetryable, type ErrorCode } from '../shared/errors.js';
import { randomId } from '../shared/ids.js';
import { describeZodError, slotSchema, type ExecutionResult, type Slot } from '../shared/calls/schemas.js';
import { incomingSlotSchema, type WireArchiveArtifacts, type WireListArtifacts, type WireReadArtifact, type WireResult, type WireSlot } from './wire-schemas.js';

/** camelCase → snake_case (`exitCode` → `exit_code`). */
export const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export function toWireSlot(s: Slot): WireSlot {
  return {
    slot_id: s.slotId,
    worker_id: s.workerId,
    container_id: s.containerId,
    container_addr: `slotq://${s.workerId}/${s.containerId || s.slotId}`,
    workspace_dir: s.workspaceDir,
    trajectory_id: s.trajectoryId,
    lease_id: s.leaseId,
    acquired_at_ms: s.acquiredAtMs,
  };
}

export type ParsedSlot = { ok: true; slot: Slot } | { ok: false; error: string };

/** A slot sent back by a client (extra keys such as `state` are ignored). */
export function fromWireSlot(value: unknown): ParsedSlot {
  const parsed = incomingSlotSchema.safeParse(value);
  if (!parsed.success) return { ok: false, error: `slot is not a slot from acquire(): ${describeZodError(parsed.error)}` };
  const w = parsed.data;
  const slot = slotSchema.parse({
    slotId: w.slot_id,
    workerId: w.worker_id,
    containerId: w.container_id,
    workspaceDir: w.workspace_dir,
    trajectoryId: w.trajectory_id,
    leaseId: w.lease_id,
    acquiredAtMs: w.acquired_at_ms,
  });
  return { ok: true, slot };
}

/**
 * The seed's ExecutionResult: metadata keys in snake_case; `timedOut` becomes the seed's `timeout: true`
 * (always with `exit_code: -1`).
 */
export function toWireResult(r: ExecutionResult): WireResult {
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.metadata)) {
    if (k === 'timedOut') {
      if (v === true) metadata['timeout'] = true;
      continue;
    }
    metadata[snake(k)] = v;
  }
  if (metadata['timeout'] === true && typeof metadata['exit_code'] !== 'number') metadata['exit_code'] = -1;
  return { success: r.success, output: r.output, error: r.error, execution_id: r.executionId, slot_id: r.slotId, metadata };
}

/** A failed result made by the gateway itself (a call it could not send). */
export function failedResult(code: ErrorCode, error: string, slotId = ''): WireResult {
  return { success: false, output: '', error, execution_id: `gw-${randomId(8)}`, slot_id: slotId, metadata: { code, retryable: isRetryable(code), duration_ms: 0 } };
}

interface Failure {
  error: string;
  code: ErrorCode;
  retryable: boolean;
  bytes?: number | undefined;
}
const failureOf = (f: Failure) => ({ error: f.error, code: f.code, retryable: f.retryable });
export const failure = (code: ErrorCode, error: string): Failure => ({ error, code, retryable: isRetryable(code) });

export function toWireRead(r: ReadArtifactResult | Failure, encoding: string): WireReadArtifact {
  if ('success' in r && r.success) {
    return { success: true, content: r.content, error: '', encoding: r.encoding, truncated: r.truncated, bytes: r.bytes, file_size: r.fileSize, path: r.path, mime: r.mime, sha256: r.sha256 };
  }
  const f = r;
  return { success: false, content: '', encoding, truncated: false, bytes: f.bytes ?? 0, file_size: null, path: '', mime: null, sha256: null, ...failureOf(f) };
}

export function toWireList(r: ListArtifactsResult | Failure): WireListArtifacts {
  if ('success' in r && r.success) {
    return { success: true, entries: r.entries.map((e) => ({ path: e.path, is_dir: e.isDir, size: e.size, mtime: e.mtimeMs / 1000 })), truncated: r.truncated, error: '' };
  }
  return { success: false, entries: [], truncated: false, ...failureOf(r) };
}

export function toWireArchive(r: ArchiveArtifactsResult | Failure): WireArchiveArtifacts {
  if ('success' in r && r.success) {
    return { success: true, content: r.content, encoding: 'base64', format: 'tar.gz', bytes: r.bytes, entry_count: r.entryCount, truncated: r.truncated, error: '' };
  }
  const f = r;
  return { success: false, content: '', encoding: 'base64', format: 'tar.gz', bytes: f.bytes ?? 0, entry_count: 0, truncated: false, ...failureOf(f) };
}
