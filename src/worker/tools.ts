import type { z } from 'zod';
import { isRetryable, type ErrorCode } from '../shared/errors.js';
import { TOOL_ALIASES, describeZodError, toolArgsSchemas, type ExecutionResult, type JobItem, type ToolName } from '../shared/schemas.js';
import { joinOutput, renderCapture } from './output.js';
import type { RunRequest, RunResult } from './session.js';

export const MAX_FILE_BYTES = 100_000;
export const MIN_TIMEOUT_S = 1;
export const MAX_TIMEOUT_S = 3600;

/** Runs one request on the slot's executor (the slot handles sessions, fallback and broken containers). */
export type SlotRunner = (req: RunRequest) => Promise<RunResult>;

/** Exit codes of the path-checking prologue (chosen to be unlikely from real commands). */
const EXIT = { notFound: 81, outside: 82, notFile: 83, tooLarge: 84 } as const;

export const clampTimeoutS = (s: number): number => Math.min(MAX_TIMEOUT_S, Math.max(MIN_TIMEOUT_S, s));
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Resolves a user path inside /workspace (after following symlinks) into $p, or exits with a code. */
const resolvePath = (path: string, mustExist: boolean): string =>
  [
    `p=$(realpath ${mustExist ? '-e' : '-m'} -- ${shellQuote(path)} 2>/dev/null) || exit ${EXIT.notFound}`,
    `case "$p" in /workspace|/workspace/*) ;; *) exit ${EXIT.outside} ;; esac`,
  ].join('\n');

export function failure(item: Pick<JobItem, 'executionId' | 'slotId'>, code: ErrorCode, error: string, metadata: Record<string, unknown> = {}): ExecutionResult {
  return {
    success: false,
    output: '',
    error,
    executionId: item.executionId,
    slotId: item.slotId,
    metadata: { durationMs: 0, ...metadata, code, retryable: isRetryable(code) },
  };
}

type Parsed = { tool: ToolName; args: Record<string, unknown> } | ExecutionResult;

/** Validates the tool name and its arguments (zod), naming the bad field. */
export function parseCall(item: JobItem): Parsed {
  const tool = (TOOL_ALIASES[item.tool] ?? item.tool) as ToolName;
  const schema = toolArgsSchemas[tool] as z.ZodType<Record<string, unknown>> | undefined;
  if (!schema) return failure(item, 'UNKNOWN_TOOL', `Unknown tool: ${item.tool}. Known tools: ${Object.keys(toolArgsSchemas).join(', ')} (aliases: ${Object.keys(TOOL_ALIASES).join(', ')})`);
  const parsed = schema.safeParse(item.args);
  if (!parsed.success) return failure(item, 'INVALID_ARGS', `Invalid arguments for ${tool}: ${describeZodError(parsed.error)}`);
  return { tool, args: parsed.data };
}

/** Executes one validated call and shapes its ExecutionResult (contract §3, §4). */
export async function executeCall(run: SlotRunner, item: JobItem): Promise<ExecutionResult> {
  const parsed = parseCall(item);
  if ('success' in parsed) return parsed;
  const { tool, args } = parsed;
  const timeoutS = clampTimeoutS(typeof args['timeout'] === 'number' ? args['timeout'] : item.timeoutS);
  const timeoutMs = timeoutS * 1000;
  switch (tool) {
    case 'bash':
    case 'bash_stateful': {
      const r = await run({ mode: tool === 'bash' ? 's' : 't', command: args['command'] as string, timeoutMs });
      return shellResult(item, r, timeoutS, tool === 'bash_stateful');
    }
    case 'read_file': {
      const path = args['path'] as string;
      const script = `${resolvePath(path, true)}\n[ -f "$p" ] || exit ${EXIT.notFile}\nsz=$(stat -c %s -- "$p")\n[ "$sz" -le ${MAX_FILE_BYTES} ] || { echo "$sz"; exit ${EXIT.tooLarge}; }\nexec cat -- "$p"`;
      const r = await run({ mode: 's', command: script, timeoutMs });
      if (r.exitCode !== 0) return fileFailure(item, r, path, timeoutS);
      const text = renderCapture(r.stdout, Number.MAX_SAFE_INTEGER).text;
      return ok(item, text, r.durationMs, { path, size: r.stdout.totalBytes });
    }
    case 'write_file': {
      const path = args['path'] as string;
      const content = args['content'] as string;
      if (content.length > MAX_FILE_BYTES) return failure(item, 'TOO_LARGE', `Content too large: ${content.length} characters (max ${MAX_FILE_BYTES})`, { size: content.length });
      const bytes = Buffer.from(content, 'utf8');
      const script = `${resolvePath(path, false)}\nmkdir -p -- "$(dirname -- "$p")" && exec cat > "$p"`;
      const r = await run({ mode: 's', command: script, stdin: bytes, timeoutMs });
      if (r.exitCode !== 0) return fileFailure(item, r, path, timeoutS);
      return ok(item, `Wrote ${bytes.length} bytes to ${path}`, r.durationMs, { path, size: bytes.length });
    }
  }
}

function ok(item: JobItem, output: string, durationMs: number, metadata: Record<string, unknown>): ExecutionResult {
  return { success: true, output, error: '', executionId: item.executionId, slotId: item.slotId, metadata: { durationMs, ...metadata } };
}

function shellResult(item: JobItem, r: RunResult, timeoutS: number, stateful: boolean): ExecutionResult {
  const { output, truncated } = joinOutput(renderCapture(r.stdout), renderCapture(r.stderr));
  const metadata: ExecutionResult['metadata'] = { exitCode: r.exitCode, durationMs: r.durationMs, ...(truncated ? { truncated } : {}), ...(stateful ? { stateful } : {}) };
  if (r.timedOut) {
    const note = stateful ? ' (the stateful shell was restarted: its cd, variables and functions are gone)' : '';
    return { success: false, output, error: `Command timed out after ${timeoutS}s and its process group was killed${note}`, executionId: item.executionId, slotId: item.slotId, metadata: { ...metadata, exitCode: -1, timedOut: true, code: 'TIMEOUT', retryable: false } };
  }
  if (r.exitCode !== 0) {
    return { success: false, output, error: `Exit code: ${r.exitCode}`, executionId: item.executionId, slotId: item.slotId, metadata: { ...metadata, code: 'TOOL_FAILED', retryable: false } };
  }
  return { success: true, output, error: '', executionId: item.executionId, slotId: item.slotId, metadata };
}

function fileFailure(item: JobItem, r: RunResult, path: string, timeoutS: number): ExecutionResult {
  const meta = { durationMs: r.durationMs, path };
  if (r.timedOut) return failure(item, 'TIMEOUT', `File operation timed out after ${timeoutS}s`, { ...meta, timedOut: true });
  switch (r.exitCode) {
    case EXIT.notFound:
      return failure(item, 'NOT_FOUND', `File not found: ${path}`, meta);
    case EXIT.outside:
      return failure(item, 'PATH_OUTSIDE_WORKSPACE', `Access denied: ${path} resolves outside /workspace`, meta);
    case EXIT.notFile:
      return failure(item, 'INVALID_ARGS', `Not a file: ${path}`, meta);
    case EXIT.tooLarge: {
      const size = Number(r.stdout.head.toString().trim());
      return failure(item, 'TOO_LARGE', `File too large: ${size} bytes (max ${MAX_FILE_BYTES})`, { ...meta, size });
    }
    default: {
      const detail = renderCapture(r.stderr, 2000).text.trim();
      return failure(item, 'TOOL_FAILED', `File operation failed with exit code ${r.exitCode}${detail ? `: ${detail}` : ''}`, { ...meta, exitCode: r.exitCode });
    }
  }
}
