import { SlotqError } from '../../shared/errors.js';
import type { z } from 'zod';
import {
  SANDBOX_TOOLS,
  isSandboxTool,
  networkArgsSchema,
  sandboxArgsSchemas,
  TRANSFER_CHUNK_BYTES,
  type DiscardArgs,
  type ExecArgs,
  type ExecPayload,
  type PackArgs,
  type ReadArgs,
  type SandboxToolName,
  type UnpackArgs,
  type WriteArgs,
} from '../../shared/calls/sandbox-schemas.js';
import { clampTimeoutS, describeZodError, type ExecutionResult, type JobItem } from '../../shared/calls/schemas.js';
import type { Capture } from '../executor/bounded-capture.js';
import { failure, succeed } from '../tools/call-result.js';
import { shellQuote as q } from '../executor/executor-protocol.js';
import type { RunRequest, RunResult } from '../executor/session.js';
import type { SlotAccess, SlotOffer } from '../tools/slot-access.js';
import { executeCall } from '../tools/tools.js';
import { EXIT } from '../tools/workspace-path.js';

/**
 * The harness's surface in the slot (src/shared/calls/sandbox-schemas.ts, docs/harnesses.md): exec with cwd,
 * env, user and stdin, and bytes at any path. Everything runs on the slot's executor as the slot's user;
 * another user's call goes over a one-shot `docker exec -u` (a slot drops every capability, so nothing in it
 * can switch users). The scripts run in slotq's helper shell, so they behave alike in every image.
 */
type Runner = (req: RunRequest) => Promise<RunResult>;

/** Exit codes of the file scripts: the path checks' own (workspace-path.ts), then the harness's (unlikely from real commands). */
const X = { notFound: EXIT.notFound, notFile: EXIT.notFile, unreadable: EXIT.unreadable, isDir: 86, denied: 87, notDir: 88, noCwd: 89 } as const;
/** Image PATH for an argv exec in an image without a shell (Docker's default). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where a transfer's part file lives: the first writable of these (a part is removed when its transfer ends). */
const PART_DIRS = '/var/tmp /tmp';
const partPath = (part: string): string => `$(for d in ${PART_DIRS}; do [ -d "$d" ] && [ -w "$d" ] && { echo "$d"; break; }; done)/.slotq-xfer-${part}`;

/** The user's runner: the slot's own user rides the executor; another user a one-shot exec as that user. */
function asUser(run: Runner, offer: SlotOffer, user: string | number | undefined): Runner {
  if (user === undefined) return run;
  const u = String(user);
  const own = u === (offer.user ?? '') || u === String(offer.uid ?? 0) || (!offer.user && (u === 'root' || u === '0'));
  if (own) return run;
  return async (req) => {
    const r = await run({ ...req, user: u });
    // The engine answers an exec as a user the image lacks with exit 126 and its message on the stream.
    if (r.exitCode === 126) {
      const said = `${bytesOf(r.stdout).toString('utf8')} ${bytesOf(r.stderr).toString('utf8')}`;
      if (userMissing(said) !== undefined) throw new Error(said.trim());
    }
    return r;
  };
}

/** Any call of a job: the harness's sandbox tools here, the model's tools and the artifact helpers in tools/. */
export function executeSlotCall(slot: SlotAccess, item: JobItem): Promise<ExecutionResult> {
  if (item.tool === SANDBOX_TOOLS.network) return networkCall(slot, item);
  return isSandboxTool(item.tool) ? executeSandboxCall((req) => slot.run(req), slot.offer, item, item.tool) : executeCall(slot, item);
}

/** The slot's egress policy (acquire's network), set from outside the slot; refused where it cannot be enforced. */
async function networkCall(slot: SlotAccess, item: JobItem): Promise<ExecutionResult> {
  const parsed = networkArgsSchema.safeParse(item.args);
  if (!parsed.success) return failure(item, 'INVALID_ARGS', `Invalid network policy: ${describeZodError(parsed.error)}`);
  const t0 = performance.now();
  if (!slot.egress) return failure(item, 'INVALID_ARGS', 'this worker cannot enforce an egress policy', { cause: 'egress_unenforceable' });
  try {
    await slot.egress(parsed.data.policy);
  } catch (err) {
    if (err instanceof SlotqError) return failure(item, err.code, err.message, { ...err.details, retryable: err.retryable });
    throw err;
  }
  return succeed(item, '', Math.round(performance.now() - t0), { network: parsed.data.policy });
}

export async function executeSandboxCall(run: Runner, offer: SlotOffer, item: JobItem, tool: SandboxToolName): Promise<ExecutionResult> {
  const schema = sandboxArgsSchemas[tool] as z.ZodType<Record<string, unknown>>;
  const parsed = schema.safeParse(item.args);
  if (!parsed.success) return failure(item, 'INVALID_ARGS', `Invalid arguments for ${tool}: ${describeZodError(parsed.error)}`);
  const args = parsed.data;
  const timeoutS = clampTimeoutS(typeof args['timeout'] === 'number' ? args['timeout'] : item.timeoutS);
  const user = args['user'] as string | number | undefined;
  const runner = asUser(run, offer, user);
  try {
    switch (tool) {
      case SANDBOX_TOOLS.exec:
        return await execCall(runner, offer, item, args as ExecArgs, timeoutS);
      case SANDBOX_TOOLS.read:
        return await readCall(runner, item, args as ReadArgs, timeoutS);
      case SANDBOX_TOOLS.write:
        return await writeCall(runner, item, args as WriteArgs, timeoutS);
      case SANDBOX_TOOLS.pack:
        return await packCall(runner, item, args as PackArgs, timeoutS);
      case SANDBOX_TOOLS.unpack:
        return await unpackCall(runner, item, args as UnpackArgs, timeoutS);
      case SANDBOX_TOOLS.discard:
        return await discardCall(runner, item, args as DiscardArgs, timeoutS);
      case SANDBOX_TOOLS.network:
        return failure(item, 'INTERNAL', 'sandbox_network is dispatched by executeSlotCall');
    }
  } catch (err) {
    const noUser = userMissing(err);
    if (noUser !== undefined) return failure(item, 'INVALID_ARGS', `No such user in this slot's image: ${String(user)} (${noUser})`, { cause: 'no_such_user' });
    throw err;
  }
}

/** The engine's refusal of an exec as a user the image does not have. */
function userMissing(err: unknown): string | undefined {
  const m = err instanceof Error ? err.message : String(err);
  return /unable to find user|no matching entries in passwd|no users found/i.test(m) ? m.slice(0, 300) : undefined;
}

const bytesOf = (c: Capture): Buffer => Buffer.concat([c.head, c.tail]);
const cut = (c: Capture): boolean => c.head.length + c.tail.length < c.totalBytes;

async function execCall(run: Runner, offer: SlotOffer, item: JobItem, a: ExecArgs, timeoutS: number): Promise<ExecutionResult> {
  const argv = Array.isArray(a.command) ? a.command : undefined;
  const useSh = offer.sh !== '';
  if (!argv && !useSh) return failure(item, 'UNKNOWN_TOOL', "This slot's image has no /bin/sh: pass the command as an argv array", { cause: 'no_shell_in_image' });
  // The executor's calls start in /workspace with the image's Env: only what differs is set, in the same
  // shell that runs the command (a string: its own lines after these; argv: exec'd), so a plain string
  // command costs what the bash tool's does.
  const lines: string[] = [];
  if (a.cwd !== undefined && a.cwd !== '/workspace') lines.push(`cd -- ${q(a.cwd)} 2>/dev/null || { printf 'slotq: cwd %s is not a directory this user can enter\\n' ${q(a.cwd)} >&2; exit ${X.noCwd}; }`);
  if (!useSh && !(a.env && 'PATH' in a.env)) lines.push(`PATH=${DEFAULT_PATH}; export PATH`);
  for (const [k, v] of Object.entries(a.env ?? {})) lines.push(`export ${k}=${q(v)}`);
  lines.push(argv ? `exec ${argv.map(q).join(' ')}` : (a.command as string));
  const r = await run({ mode: useSh ? 's' : 'i', command: lines.join('\n'), timeoutMs: timeoutS * 1000, ...(a.stdin ? { stdin: Buffer.from(a.stdin, 'base64') } : {}) });
  const payload: ExecPayload = {
    exitCode: r.timedOut ? -1 : r.exitCode,
    stdout: bytesOf(r.stdout).toString('base64'),
    stderr: bytesOf(r.stderr).toString('base64'),
    stdoutBytes: r.stdout.totalBytes,
    stderrBytes: r.stderr.totalBytes,
    timedOut: r.timedOut,
    truncated: cut(r.stdout) || cut(r.stderr),
  };
  const meta = { exec: payload, exitCode: payload.exitCode, durationMs: r.durationMs };
  if (r.timedOut) return failure(item, 'TIMEOUT', `Command timed out after ${timeoutS}s and its process group was killed`, { ...meta, timedOut: true, retryable: false });
  // An exit code of its own is the command's answer, not a failure of the call: the harness reads exitCode.
  return { ...succeed(item, '', r.durationMs, meta), success: r.exitCode === 0 };
}

/** The checks before reading $p: it exists, is a regular file, and this user may read it. */
const readable = ['[ -e "$p" ] || exit ' + X.notFound, '[ -d "$p" ] && exit ' + X.isDir, '[ -f "$p" ] || exit ' + X.notFile, '[ -r "$p" ] || exit ' + X.unreadable].join('\n');

async function readCall(run: Runner, item: JobItem, a: ReadArgs, timeoutS: number): Promise<ExecutionResult> {
  const aligned = a.offset % 65536 === 0 && a.length % 65536 === 0;
  const copy = aligned
    ? `dd if="$p" bs=65536 skip=${a.offset / 65536} count=${a.length / 65536} status=none`
    : `tail -c +${a.offset + 1} "$p" | head -c ${a.length}`;
  const script = [`p=${a.part ? partPath(a.part) : q(a.path)}`, readable, 'sz=$(stat -L -c %s "$p") || exit 1', 'echo "$sz"', `exec ${copy}`].join('\n');
  const r = await run({ mode: 'i', command: script, timeoutMs: timeoutS * 1000, stdoutCap: a.length + 64 });
  if (r.exitCode !== 0 || r.timedOut) return fileFailure(item, r, a.path, timeoutS);
  const out = bytesOf(r.stdout);
  const nl = out.indexOf(0x0a);
  const size = Number(out.subarray(0, nl).toString());
  if (nl < 0 || !Number.isFinite(size)) return failure(item, 'INTERNAL', `Unexpected output while reading ${a.path}`, { durationMs: r.durationMs });
  const data = out.subarray(nl + 1);
  return succeed(item, '', r.durationMs, { transfer: { size, data: data.toString('base64') }, path: a.path, size });
}

/** Makes $d (the parent of $p) and checks $p can be written there. */
const writable = [
  'd=${p%/*}; [ -n "$d" ] || d=/',
  '[ -d "$p" ] && exit ' + X.isDir,
  'mkdir -p -- "$d" 2>/dev/null || { [ -e "$d" ] && [ ! -d "$d" ] && exit ' + X.notDir + '; exit ' + X.denied + '; }',
  '[ -w "$d" ] || exit ' + X.denied,
].join('\n');

async function writeCall(run: Runner, item: JobItem, a: WriteArgs, timeoutS: number): Promise<ExecutionResult> {
  const data = Buffer.from(a.data, 'base64');
  if (data.length > TRANSFER_CHUNK_BYTES) return failure(item, 'TOO_LARGE', `A write call carries at most ${TRANSFER_CHUNK_BYTES} bytes`);
  const chmod = a.mode !== undefined ? `chmod ${a.mode.toString(8)} "$f" || exit ${X.denied}` : '';
  const lines: string[] = [];
  if (a.part) {
    // Chunks land at their offset in the part file (in any order); the final one moves it into place.
    lines.push(`f=${partPath(a.part)}`, `[ -n "\${f%/.slotq-xfer-*}" ] || exit ${X.denied}`);
    const seek = a.offset % 65536 === 0 ? `bs=65536 seek=${a.offset / 65536}` : `bs=1 seek=${a.offset}`;
    lines.push(`dd of="$f" ${seek} conv=notrunc status=none || exit ${X.denied}`);
    if (a.final && a.path) lines.push(`p=${q(a.path)}`, writable, chmod, `mv -f -- "$f" "$p" || exit ${X.denied}`);
  } else {
    if (!a.path) return failure(item, 'INVALID_ARGS', 'A write without a part needs a path');
    // One call: the bytes go to a temporary file beside the target, which then replaces it whole.
    lines.push(`p=${q(a.path)}`, writable, 'f="$d/.slotq-w.$$"', `cat > "$f" || { rm -f "$f"; exit ${X.denied}; }`, chmod, `mv -f -- "$f" "$p" || { rm -f "$f"; exit ${X.denied}; }`);
  }
  const r = await run({ mode: 'i', command: lines.filter(Boolean).join('\n'), stdin: data, timeoutMs: timeoutS * 1000 });
  if (r.exitCode !== 0 || r.timedOut) return fileFailure(item, r, a.path ?? '(upload)', timeoutS);
  return succeed(item, '', r.durationMs, { path: a.path, size: data.length });
}

async function packCall(run: Runner, item: JobItem, a: PackArgs, timeoutS: number): Promise<ExecutionResult> {
  const script = [
    `p=${q(a.path)}`,
    `[ -e "$p" ] || [ -L "$p" ] || exit ${X.notFound}`,
    `[ -r "$p" ] || exit ${X.unreadable}`,
    `f=${partPath(a.part)}`,
    'b=${p%/}; n=${b##*/}; d=${b%/*}; [ -n "$d" ] || d=/; [ -n "$n" ] || n=.',
    `tar -c -f "$f" -C "$d" -- "$n" 2>"$f.err" || { e=$(head -c 2000 "$f.err"); rm -f "$f" "$f.err"; echo "$e" >&2; case $e in *"ermission denied"*) exit ${X.unreadable};; esac; exit 1; }`,
    'rm -f "$f.err"',
    'stat -c %s "$f"',
  ].join('\n');
  const r = await run({ mode: 'i', command: script, timeoutMs: timeoutS * 1000 });
  if (r.exitCode !== 0 || r.timedOut) return fileFailure(item, r, a.path, timeoutS);
  const size = Number(bytesOf(r.stdout).toString().trim());
  return succeed(item, '', r.durationMs, { transfer: { size }, path: a.path, size });
}

async function unpackCall(run: Runner, item: JobItem, a: UnpackArgs, timeoutS: number): Promise<ExecutionResult> {
  const script = [
    `f=${partPath(a.part)}`,
    `[ -f "$f" ] || exit ${X.notFound}`,
    `t=${q(a.target)}`,
    `[ -e "$t" ] && [ ! -d "$t" ] && { rm -f "$f"; exit ${X.notDir}; }`,
    `mkdir -p -- "$t" 2>/dev/null || { rm -f "$f"; exit ${X.denied}; }`,
    // -o: files belong to the user unpacking (no chown: the slot has no CAP_CHOWN).
    `tar -x -o -f "$f" -C "$t" 2>"$f.err"; rc=$?; e=$(head -c 2000 "$f.err"); rm -f "$f" "$f.err"`,
    `[ $rc -eq 0 ] || { echo "$e" >&2; case $e in *"ermission denied"*) exit ${X.denied};; esac; exit 1; }`,
  ].join('\n');
  const r = await run({ mode: 'i', command: script, timeoutMs: timeoutS * 1000 });
  if (r.exitCode !== 0 || r.timedOut) return fileFailure(item, r, a.target, timeoutS);
  return succeed(item, '', r.durationMs, { path: a.target });
}

async function discardCall(run: Runner, item: JobItem, a: DiscardArgs, timeoutS: number): Promise<ExecutionResult> {
  const r = await run({ mode: 'i', command: `f=${partPath(a.part)}; rm -f "$f" "$f.err"`, timeoutMs: timeoutS * 1000 });
  if (r.exitCode !== 0 || r.timedOut) return fileFailure(item, r, '(transfer)', timeoutS);
  return succeed(item, '', r.durationMs, {});
}

function fileFailure(item: JobItem, r: RunResult, path: string, timeoutS: number): ExecutionResult {
  const meta = { durationMs: r.durationMs, path };
  if (r.timedOut) return failure(item, 'TIMEOUT', `File operation on ${path} timed out after ${timeoutS}s`, { ...meta, timedOut: true, retryable: false });
  const detail = bytesOf(r.stderr).toString('utf8').trim().slice(0, 2000);
  switch (r.exitCode) {
    case X.notFound:
      return failure(item, 'NOT_FOUND', `No such file or directory: ${path}`, meta);
    case X.isDir:
      return failure(item, 'INVALID_ARGS', `Is a directory: ${path}`, { ...meta, cause: 'is_directory' });
    case X.notDir:
      return failure(item, 'INVALID_ARGS', `Not a directory: a component of ${path} is a file`, { ...meta, cause: 'not_directory' });
    case X.notFile:
      return failure(item, 'INVALID_ARGS', `Not a regular file: ${path}`, { ...meta, cause: 'not_file' });
    case X.unreadable:
      return failure(item, 'PERMISSION_DENIED', `Permission denied: ${path} cannot be read by this user`, meta);
    case X.denied:
      return failure(item, 'PERMISSION_DENIED', `Permission denied: ${path} cannot be written by this user${detail ? ` (${detail})` : ''}`, meta);
    default:
      if (/ermission denied/.test(detail)) return failure(item, 'PERMISSION_DENIED', `Permission denied: ${path} (${detail})`, meta);
      return failure(item, 'TOOL_FAILED', `File operation on ${path} failed with exit code ${r.exitCode}${detail ? `: ${detail}` : ''}`, { ...meta, exitCode: r.exitCode });
  }
}
