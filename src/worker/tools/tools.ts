import type { z } from 'zod';
import { isArtifactTool } from '../../shared/calls/artifact-schemas.js';
import { TOOL_ALIASES, clampTimeoutS, describeZodError, toolArgsSchemas, type ExecutionResult, type JobItem, type TmuxArgs, type ToolName } from '../../shared/calls/schemas.js';
import { executeArtifactCall } from './artifacts.js';
import { failure, succeed } from './call-result.js';
import { joinOutput, renderCapture } from './output.js';
import { insideCause } from './inside-causes.js';
import type { RunResult } from '../executor/session.js';
import type { SlotAccess, SlotRunner, SlotOffer } from './slot-access.js';
import { runTmux } from './tmux-tool.js';
import { EXIT, resolvePathScript as resolvePath } from './workspace-path.js';

export const MAX_FILE_BYTES = 100_000;

/**
 * The original's policy arguments (contract §4). Every slot is a container sandbox, so require_sandbox and
 * require_stateful_sandbox are always met; allow_network: false is met only by a slot without a network.
 */
function policyRefusal(item: JobItem, args: Record<string, unknown>, offer: SlotOffer): ExecutionResult | undefined {
  if (args['allow_network'] === false && !offer.networkIsolated) {
    return failure(item, 'INVALID_ARGS', 'Network isolation requested (allow_network: false) but this slot has a network: run it on a worker with SLOTQ_NETWORK=none', { cause: 'policy', sandboxed: true, network_isolated: false });
  }
  return undefined;
}

type Parsed = { tool: ToolName; args: Record<string, unknown> } | ExecutionResult;

/** Validates the tool name and its arguments (zod), naming the bad field. */
export function parseCall(item: JobItem): Parsed {
  // Own keys only: a tool named `__proto__` or `constructor` must not find Object.prototype's members.
  const tool = (Object.hasOwn(TOOL_ALIASES, item.tool) ? TOOL_ALIASES[item.tool] : item.tool) as ToolName;
  const schema = (Object.hasOwn(toolArgsSchemas, tool) ? toolArgsSchemas[tool] : undefined) as z.ZodType<Record<string, unknown>> | undefined;
  if (!schema) return failure(item, 'UNKNOWN_TOOL', `Unknown tool: ${item.tool}. Known tools: ${Object.keys(toolArgsSchemas).join(', ')} (aliases: ${Object.keys(TOOL_ALIASES).join(', ')})`);
  const parsed = schema.safeParse(item.args);
  if (!parsed.success) return failure(item, 'INVALID_ARGS', `Invalid arguments for ${tool}: ${describeZodError(parsed.error)}`);
  return { tool, args: parsed.data };
}

/** Executes one validated call and shapes its ExecutionResult (contract §3, §4). */
export async function executeCall(slot: SlotAccess, item: JobItem): Promise<ExecutionResult> {
  const run: SlotRunner = (req) => slot.run(req);
  if (isArtifactTool(item.tool)) return executeArtifactCall(run, slot.io, item);
  const parsed = parseCall(item);
  if ('success' in parsed) return parsed;
  const { tool, args } = parsed;
  const refused = policyRefusal(item, args, slot.offer);
  if (refused) return refused;
  const sandbox = { sandboxed: true, network_isolated: slot.offer.networkIsolated };
  const timeoutS = clampTimeoutS(typeof args['timeout'] === 'number' ? args['timeout'] : item.timeoutS);
  const timeoutMs = timeoutS * 1000;
  switch (tool) {
    case 'bash':
    case 'bash_stateful': {
      const stateful = tool === 'bash_stateful';
      const shell = stateful ? slot.offer.stateful : slot.offer.sh;
      if (!shell) return failure(item, 'UNKNOWN_TOOL', `${tool} is not available in this slot: its image has no ${stateful ? 'bash or /bin/sh' : '/bin/sh'} (read_file, write_file and the artifact helpers still work)`, { cause: 'no_shell_in_image' });
      const r = await run({ mode: stateful ? 't' : 's', command: args['command'] as string, timeoutMs });
      const result = shellResult(item, r, timeoutS, stateful);
      Object.assign(result.metadata, sandbox);
      // bash_stateful in an image without bash runs in its sh: say so.
      if (stateful && !shell.endsWith('bash')) result.metadata['shell'] = 'sh';
      return result;
    }
    case 'tmux':
      return runTmux(run, slot.offer.tmux || undefined, item, args as TmuxArgs, timeoutS);
    case 'read_file': {
      const path = args['path'] as string;
      const script = `${resolvePath(path, true)}\n[ -f "$p" ] || exit ${EXIT.notFile}\nsz=$(stat -c %s "$p")\n[ "$sz" -le ${MAX_FILE_BYTES} ] || { echo "$sz"; exit ${EXIT.tooLarge}; }\nexec cat "$p"`;
      const r = await run({ mode: 'i', command: script, timeoutMs });
      if (r.exitCode !== 0) return fileFailure(item, r, path, timeoutS);
      const text = renderCapture(r.stdout, Number.MAX_SAFE_INTEGER).text;
      return succeed(item, text, r.durationMs, { path, size: r.stdout.totalBytes });
    }
    case 'write_file': {
      const path = args['path'] as string;
      const content = args['content'] as string;
      if (content.length > MAX_FILE_BYTES) return failure(item, 'TOO_LARGE', `Content too large: ${content.length} characters (max ${MAX_FILE_BYTES})`, { size: content.length });
      const bytes = Buffer.from(content, 'utf8');
      const script = `${resolvePath(path, false)}\n[ -e "$p" ] && [ ! -f "$p" ] && exit ${EXIT.notFile}\nmkdir -p "\${p%/*}" && exec cat > "$p"`;
      const r = await run({ mode: 'i', command: script, stdin: bytes, timeoutMs });
      if (r.exitCode !== 0) return fileFailure(item, r, path, timeoutS);
      return succeed(item, `Wrote ${bytes.length} bytes to ${path}`, r.durationMs, { path, size: bytes.length });
    }
  }
}

function shellResult(item: JobItem, r: RunResult, timeoutS: number, stateful: boolean): ExecutionResult {
  const { output, truncated } = joinOutput(renderCapture(r.stdout), renderCapture(r.stderr));
  const metadata: ExecutionResult['metadata'] = { exitCode: r.exitCode, durationMs: r.durationMs, ...(truncated ? { truncated } : {}), ...(stateful ? { stateful } : {}) };
  if (r.timedOut) {
    const note = stateful ? ' (the stateful shell was restarted: its cd, variables and functions are gone)' : '';
    // What the slot saw while the call ran (a fork bomb that hit the pids limit, an OOM kill): why it hung.
    const inside = insideCause(r, output, false);
    const error = `Command timed out after ${timeoutS}s and its process group was killed${note}${inside ? ` (${inside.note})` : ''}`;
    return { success: false, output, error, executionId: item.executionId, slotId: item.slotId, metadata: { ...metadata, exitCode: -1, timedOut: true, code: 'TIMEOUT', retryable: false, ...(inside ? { cause: inside.cause } : {}) } };
  }
  if (r.exitCode !== 0) {
    const inside = insideCause(r, output, stateful);
    const error = `Exit code: ${r.exitCode}${inside ? ` (${inside.note})` : ''}`;
    return { success: false, output, error, executionId: item.executionId, slotId: item.slotId, metadata: { ...metadata, code: 'TOOL_FAILED', retryable: false, ...(inside ? { cause: inside.cause } : {}) } };
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
      const inside = insideCause(r, detail, false);
      return failure(item, 'TOOL_FAILED', `File operation failed with exit code ${r.exitCode}${detail ? `: ${detail}` : ''}${inside ? ` (${inside.note})` : ''}`, { ...meta, exitCode: r.exitCode, ...(inside ? { cause: inside.cause } : {}) });
    }
  }
}
