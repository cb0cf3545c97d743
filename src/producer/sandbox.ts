import { Readable } from 'node:stream';
import { SlotqError, isRetryable, type ErrorCode } from '../shared/errors.js';
import { randomId } from '../shared/ids.js';
import {
  EXEC_STDIN_MAX_BYTES,
  SANDBOX_TOOLS,
  TRANSFER_CHUNK_BYTES,
  TRANSFER_MAX_BYTES,
  TRANSFER_WINDOW,
  execPayloadSchema,
  packPayloadSchema,
  readPayloadSchema,
  type SandboxToolName,
} from '../shared/calls/sandbox-schemas.js';
import type { ExecutionResult } from '../shared/calls/schemas.js';
import { packDirectory } from './tar-pack.js';

/** One call of an internal sandbox tool on the slot (SlotBackend sends it through executeBatch). */
export type SandboxCall = (tool: SandboxToolName, args: Record<string, unknown>) => Promise<ExecutionResult>;

export interface ExecOptions {
  /** Any directory of the container (default /workspace). */
  cwd?: string;
  /** Merged over the image's Env. */
  env?: Record<string, string>;
  /** A user name or uid (default: the slot's user); refused when the image has no such user. */
  user?: string | number;
  stdin?: string | Uint8Array;
  timeoutS?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Bytes each stream produced (the strings keep a head and a tail when it was more than the cap). */
  stdoutBytes: number;
  stderrBytes: number;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
  /** Set when the call did not run to an exit code of its own: TIMEOUT, WORKER_LOST, SLOT_BROKEN, ... */
  code?: ErrorCode;
  retryable?: boolean;
  /** not_run or unknown, when the call's fate is not an exit code (call-outcome.ts). */
  outcome?: string;
  /** What happened, when code is set. */
  error?: string;
}

export interface FileOptions {
  /** Who reads or owns the file (default: the slot's user). */
  user?: string | number;
  timeoutS?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const common = (o: FileOptions | undefined): Record<string, unknown> => ({
  ...(o?.user !== undefined ? { user: o.user } : {}),
  ...(o?.timeoutS !== undefined ? { timeout: o.timeoutS } : {}),
});

/** Runs a command in the slot; never throws for what the command or the slot did (it says so in the result). */
export async function execIn(call: SandboxCall, command: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const stdin = opts.stdin === undefined ? undefined : typeof opts.stdin === 'string' ? Buffer.from(opts.stdin, 'utf8') : Buffer.from(opts.stdin);
  if (stdin && stdin.length > EXEC_STDIN_MAX_BYTES) {
    return failedExec('TOO_LARGE', `exec stdin is ${stdin.length} bytes (max ${EXEC_STDIN_MAX_BYTES}): write it to a file with writeFile and redirect from it`, 0);
  }
  const args: Record<string, unknown> = {
    command: typeof command === 'string' ? command : [...command],
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    ...(stdin ? { stdin: stdin.toString('base64') } : {}),
    ...common(opts),
  };
  const r = await call(SANDBOX_TOOLS.exec, args);
  const parsed = execPayloadSchema.safeParse(r.metadata['exec']);
  if (!parsed.success) {
    const code = r.metadata.code ?? 'INTERNAL';
    const outcome = typeof r.metadata['outcome'] === 'string' ? r.metadata['outcome'] : undefined;
    return { ...failedExec(code, r.error || `exec failed (${code})`, r.metadata.durationMs, r.metadata.retryable), ...(outcome ? { outcome } : {}) };
  }
  const p = parsed.data;
  const res: ExecResult = {
    exitCode: p.exitCode,
    stdout: utf8.decode(Buffer.from(p.stdout, 'base64')),
    stderr: utf8.decode(Buffer.from(p.stderr, 'base64')),
    stdoutBytes: p.stdoutBytes,
    stderrBytes: p.stderrBytes,
    timedOut: p.timedOut,
    truncated: p.truncated,
    durationMs: r.metadata.durationMs,
  };
  if (p.timedOut) Object.assign(res, { code: 'TIMEOUT', retryable: false, error: r.error });
  return res;
}

function failedExec(code: ErrorCode, error: string, durationMs: number, retryable?: boolean): ExecResult {
  return { exitCode: -1, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, timedOut: code === 'TIMEOUT', truncated: false, durationMs, code, retryable: retryable ?? isRetryable(code), error };
}

/** A failed transfer call as the typed error the file helpers throw. */
function fail(r: ExecutionResult, what: string): never {
  const code = r.metadata.code ?? 'INTERNAL';
  const details: Record<string, unknown> = {};
  for (const k of ['cause', 'outcome', 'path', 'size'] as const) if (r.metadata[k] !== undefined) details[k] = r.metadata[k];
  throw new SlotqError(code, r.error || `${what} failed (${code})`, { retryable: r.metadata.retryable ?? isRetryable(code), details });
}

/** Runs fn over 0..n-1 with at most `window` in flight; the first failure stops new starts and is thrown. */
async function windowed(n: number, window: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const lane = async (): Promise<void> => {
    while (failed === undefined && next < n) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  if (failed !== undefined) throw failed as Error;
}

/** Writes bytes at an absolute path, creating parent directories; owned by the exec user. */
export async function writeFileIn(call: SandboxCall, path: string, data: string | Uint8Array, opts: FileOptions & { mode?: number } = {}): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const base = { path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}), ...common(opts) };
  if (bytes.length <= TRANSFER_CHUNK_BYTES) {
    const r = await call(SANDBOX_TOOLS.write, { ...base, data: bytes.toString('base64') });
    if (!r.success) fail(r, `writeFile ${path}`);
    return;
  }
  const part = randomId(12);
  const chunks = Math.ceil(bytes.length / TRANSFER_CHUNK_BYTES);
  const send = async (i: number, final: boolean): Promise<void> => {
    const offset = i * TRANSFER_CHUNK_BYTES;
    const r = await call(SANDBOX_TOOLS.write, { ...base, part, offset, final, data: bytes.subarray(offset, offset + TRANSFER_CHUNK_BYTES).toString('base64') });
    if (!r.success) fail(r, `writeFile ${path}`);
  };
  try {
    await windowed(chunks - 1, TRANSFER_WINDOW, (i) => send(i, false));
    await send(chunks - 1, true); // last: moves the part file into place
  } catch (err) {
    await call(SANDBOX_TOOLS.discard, { part, ...common(opts) }).catch(() => undefined);
    throw err;
  }
}

/** Reads a file (any absolute path) whole; TOO_LARGE past maxBytes (default 1 GiB). */
export async function readFileIn(call: SandboxCall, path: string, opts: FileOptions & { maxBytes?: number } = {}): Promise<Uint8Array> {
  return readChunks(call, { path }, `readFile ${path}`, opts);
}

async function readChunks(call: SandboxCall, target: { path: string; part?: string }, what: string, opts: FileOptions & { maxBytes?: number }): Promise<Buffer> {
  const max = opts.maxBytes ?? TRANSFER_MAX_BYTES;
  const readAt = async (offset: number): Promise<{ size: number; data: Buffer }> => {
    const r = await call(SANDBOX_TOOLS.read, { ...target, offset, length: TRANSFER_CHUNK_BYTES, ...common(opts) });
    if (!r.success) fail(r, what);
    const p = readPayloadSchema.safeParse(r.metadata['transfer']);
    if (!p.success) throw new SlotqError('INTERNAL', `${what}: the worker's answer has no transfer payload`);
    return { size: p.data.size, data: Buffer.from(p.data.data, 'base64') };
  };
  const first = await readAt(0);
  if (first.size > max) throw new SlotqError('TOO_LARGE', `${what}: ${first.size} bytes (max ${max})`, { details: { size: first.size } });
  if (first.size <= first.data.length) return first.data;
  const chunks = Math.ceil(first.size / TRANSFER_CHUNK_BYTES);
  const parts: Buffer[] = [first.data];
  await windowed(chunks - 1, TRANSFER_WINDOW, async (i) => {
    parts[i + 1] = (await readAt((i + 1) * TRANSFER_CHUNK_BYTES)).data;
  });
  return Buffer.concat(parts);
}

/**
 * Uploads a local directory (packed as a tar here) or a tar stream, and unpacks it into targetDir (made if
 * missing). The archive goes in TRANSFER_CHUNK_BYTES calls; the files are owned by the exec user.
 */
export async function uploadIn(call: SandboxCall, source: string | Readable, targetDir: string, opts: FileOptions = {}): Promise<void> {
  const tar = typeof source === 'string' ? packDirectory(source) : source;
  const part = randomId(12);
  const inFlight = new Set<Promise<void>>();
  let failed: unknown;
  let offset = 0;
  const send = (data: Buffer, at: number): void => {
    const p = call(SANDBOX_TOOLS.write, { part, offset: at, final: false, data: data.toString('base64'), ...common(opts) })
      .then((r) => (r.success ? undefined : fail(r, `upload to ${targetDir}`)))
      .catch((err: unknown) => void (failed ??= err))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for await (const chunk of tar as AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= TRANSFER_CHUNK_BYTES) {
        const all = Buffer.concat(pending);
        send(all.subarray(0, TRANSFER_CHUNK_BYTES), offset);
        offset += TRANSFER_CHUNK_BYTES;
        pending = [all.subarray(TRANSFER_CHUNK_BYTES)];
        pendingBytes = pending[0]!.length;
        while (inFlight.size >= TRANSFER_WINDOW) await Promise.race(inFlight);
        if (failed !== undefined) throw failed as Error;
      }
    }
    if (pendingBytes > 0 || offset === 0) send(Buffer.concat(pending), offset);
    await Promise.all(inFlight);
    if (failed !== undefined) throw failed as Error;
    const r = await call(SANDBOX_TOOLS.unpack, { part, target: targetDir, ...common(opts) });
    if (!r.success) fail(r, `upload to ${targetDir}`);
  } catch (err) {
    if (typeof source !== 'string') source.destroy();
    else tar.destroy();
    await Promise.allSettled(inFlight);
    await call(SANDBOX_TOOLS.discard, { part, ...common(opts) }).catch(() => undefined);
    throw err;
  }
}

/**
 * A tar stream of a path (a directory or a file; members named from its basename, as `docker cp` does).
 * The archive is made in the slot first (TOO_LARGE past maxBytes), then read in chunks as the stream is read.
 */
export async function downloadIn(call: SandboxCall, path: string, opts: FileOptions & { maxBytes?: number } = {}): Promise<Readable> {
  const part = randomId(12);
  const discard = (): Promise<unknown> => call(SANDBOX_TOOLS.discard, { part, ...common(opts) }).catch(() => undefined);
  const r = await call(SANDBOX_TOOLS.pack, { path, part, ...common(opts) });
  if (!r.success) {
    await discard();
    fail(r, `download ${path}`);
  }
  const p = packPayloadSchema.safeParse(r.metadata['transfer']);
  const size = p.success ? p.data.size : -1;
  const max = opts.maxBytes ?? TRANSFER_MAX_BYTES;
  if (size < 0 || size > max) {
    await discard();
    throw new SlotqError(size < 0 ? 'INTERNAL' : 'TOO_LARGE', size < 0 ? `download ${path}: the worker's answer has no size` : `download ${path}: the archive is ${size} bytes (max ${max})`, { details: { size } });
  }
  const chunks = Math.ceil(size / TRANSFER_CHUNK_BYTES);
  const ahead = new Map<number, Promise<Buffer>>();
  const fetchChunk = (i: number): Promise<Buffer> =>
    call(SANDBOX_TOOLS.read, { path, part, offset: i * TRANSFER_CHUNK_BYTES, length: TRANSFER_CHUNK_BYTES, ...common(opts) }).then((res) => {
      if (!res.success) fail(res, `download ${path}`);
      const d = readPayloadSchema.safeParse(res.metadata['transfer']);
      if (!d.success) throw new SlotqError('INTERNAL', `download ${path}: the worker's answer has no transfer payload`);
      return Buffer.from(d.data.data, 'base64');
    });
  let next = 0;
  const prefetch = (): void => {
    for (let i = next; i < Math.min(chunks, next + TRANSFER_WINDOW); i++) {
      if (!ahead.has(i)) {
        const f = fetchChunk(i);
        f.catch(() => undefined); // awaited by read(); never unhandled meanwhile
        ahead.set(i, f);
      }
    }
  };
  return new Readable({
    read() {
      if (next >= chunks) {
        void discard().then(() => this.push(null));
        return;
      }
      prefetch();
      const i = next++;
      const f = ahead.get(i)!;
      ahead.delete(i);
      f.then(
        (buf) => this.push(buf),
        (err: unknown) => void discard().then(() => this.destroy(err as Error)),
      );
    },
    destroy(err, cb) {
      if (next < chunks) void discard();
      cb(err);
    },
  });
}
