import { InternalError } from '../../shared/errors.js';
import type { ExecutionResult, JobItem } from '../../shared/calls/schemas.js';
import { failure } from './call-result.js';
import { INTERNAL_STDOUT_BYTES, type ArtifactIo } from './slot-access.js';
import type { Capture } from '../executor/bounded-capture.js';
import { renderCapture } from './output.js';
import { raceDeadline } from '../../shared/deadline.js';
import type { RunRequest, RunResult } from '../executor/session.js';
import { EXIT } from './workspace-path.js';

/** One artifact call in progress: its runner, container access and deadline. */
export interface ArtifactContext {
  readonly item: JobItem;
  readonly run: (req: RunRequest) => Promise<RunResult>;
  readonly io: ArtifactIo;
  readonly timeoutS: number;
  readonly startedAtMs: number;
  readonly deadlineMs: number;
}

export interface ScriptOutput {
  exitCode: number;
  timedOut: boolean;
  stdout: Buffer;
  stderr: string;
}

const MAX_STDERR_CHARS = 2000;
/** How long past the call's deadline a one-shot exec may take before it is given up (docker round trips). */
const EXEC_SLACK_MS = 5000;

const isWhole = (c: Capture): boolean => c.tail.length === 0 && c.head.length === c.totalBytes;
export const remainingMs = (ctx: ArtifactContext): number => Math.max(1000, ctx.deadlineMs - Date.now());

/**
 * Runs a script on the slot's executor (one call, FIFO with the slot's others). When `wholeStdout` is set
 * and the output outgrew the executor's head+tail capture, runs it again over a one-shot exec that keeps
 * stdout whole: the script must bound its own output (head -c, head -z -n).
 */
export async function runScript(ctx: ArtifactContext, script: string, opts: { wholeStdout?: boolean } = {}): Promise<ScriptOutput> {
  const r = await ctx.run({ mode: 'i', command: script, timeoutMs: remainingMs(ctx) });
  if (r.timedOut || isWhole(r.stdout) || !opts.wholeStdout) {
    return { exitCode: r.exitCode, timedOut: r.timedOut, stdout: r.stdout.head, stderr: renderCapture(r.stderr, MAX_STDERR_CHARS).text };
  }
  return execScript(ctx, script);
}

/** The same script over a one-shot exec, its process group killed in the container at the call's deadline. */
export async function execScript(ctx: ArtifactContext, script: string): Promise<ScriptOutput> {
  const budgetMs = remainingMs(ctx);
  const out = await raceDeadline(ctx.io.exec(script, budgetMs), budgetMs + EXEC_SLACK_MS);
  if (out === 'late') return { exitCode: -1, timedOut: true, stdout: Buffer.alloc(0), stderr: '' };
  if (out.stdoutCapture.totalBytes > out.stdout.length) {
    throw new InternalError(`slotq's own script printed ${out.stdoutCapture.totalBytes} bytes, more than the ${INTERNAL_STDOUT_BYTES} it may (the rest was not kept)`);
  }
  const stderr = out.stderr.subarray(-MAX_STDERR_CHARS).toString('utf8');
  return { exitCode: out.exitCode, timedOut: out.exitCode === 137, stdout: out.stdout, stderr };
}

/** Maps a script's exit code (the path prologue's and the scripts' own) to a typed failure. */
export function scriptFailure(ctx: ArtifactContext, out: ScriptOutput, path: string, notFileError: string): ExecutionResult {
  const meta = { durationMs: Date.now() - ctx.startedAtMs, path };
  if (out.timedOut) return failure(ctx.item, 'TIMEOUT', `Artifact call timed out after ${ctx.timeoutS}s`, { ...meta, timedOut: true });
  switch (out.exitCode) {
    case EXIT.notFound:
      return failure(ctx.item, 'NOT_FOUND', `Not found: ${path}`, meta);
    case EXIT.outside:
      return failure(ctx.item, 'PATH_OUTSIDE_WORKSPACE', `Access denied: ${path} resolves outside /workspace`, meta);
    case EXIT.notFile:
      return failure(ctx.item, 'INVALID_ARGS', `${notFileError}: ${path}`, meta);
    case EXIT.unreadable:
      return failure(ctx.item, 'TOOL_FAILED', `Permission denied: ${path} is not readable by the sandbox user`, meta);
    default: {
      const detail = out.stderr.trim();
      return failure(ctx.item, 'TOOL_FAILED', `Artifact call failed with exit code ${out.exitCode}${detail ? `: ${detail}` : ''}`, { ...meta, exitCode: out.exitCode });
    }
  }
}

/** Splits `a\0b\0rest` into its first n NUL-terminated fields and the rest (undefined when fields are missing). */
export function splitNul(buf: Buffer, n: number): { fields: string[]; rest: Buffer } | undefined {
  const fields: string[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = buf.indexOf(0, at);
    if (end < 0) return undefined;
    fields.push(buf.subarray(at, end).toString('utf8'));
    at = end + 1;
  }
  return { fields, rest: buf.subarray(at) };
}
