import { extname } from 'node:path/posix';
import type { ReadArtifactArgs, ReadArtifactPayload } from '../../shared/calls/artifact-schemas.js';
import type { ExecutionResult } from '../../shared/calls/schemas.js';
import { execScript, runScript, scriptFailure, splitNul, type ArtifactContext, type ScriptOutput } from './artifact-context.js';
import { failure, succeed } from './call-result.js';
import { EXIT, relativeToWorkspace, resolvePathScript } from './workspace-path.js';

/** Reads up to this many bytes in the same executor call as the checks (under its 200 000-byte capture). */
export const INLINE_READ_BYTES = 150_000;

const MIME: Readonly<Record<string, string>> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.txt': 'text/plain',
  '.log': 'text/plain',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.html': 'text/html',
  '.md': 'text/markdown',
};
export const mimeOf = (path: string): string => MIME[extname(path).toLowerCase()] ?? 'application/octet-stream';

const decoder = new TextDecoder('utf-8', { fatal: false }); // invalid bytes become U+FFFD

/**
 * Checks the path, prints `size sha n\0resolved\0`, then the first n = min(size, limit) bytes when
 * n <= inlineBytes. The SHA-256 is of the whole file (contract §5), computed in the container.
 */
function readScript(path: string, limit: number, withSha: boolean, inlineBytes: number): string {
  return [
    resolvePathScript(path, true),
    `[ -f "$p" ] || exit ${EXIT.notFile}`,
    `[ -r "$p" ] || exit ${EXIT.unreadable}`,
    'sz=$(stat -c %s "$p") || exit 1',
    withSha ? 'sha=$(sha256sum < "$p") || exit 1; sha=${sha%% *}' : 'sha=-',
    `n=${limit}; [ "$sz" -lt "$n" ] && n=$sz`,
    `printf '%s %s %s\\0%s\\0' "$sz" "$sha" "$n" "$p"`,
    `[ "$n" -le ${inlineBytes} ] || exit 0`,
    'exec head -c "$n" "$p"',
  ].join('\n');
}

interface ReadOutput {
  fileSize: number;
  sha256: string | null;
  wanted: number;
  resolved: string;
  content: Buffer;
}

function parseRead(out: ScriptOutput): ReadOutput | undefined {
  const split = splitNul(out.stdout, 2);
  const [header = '', resolved = ''] = split?.fields ?? [];
  const m = /^(\d+) ([0-9a-f]{64}|-) (\d+)$/.exec(header);
  if (!split || !m) return undefined;
  return { fileSize: Number(m[1]), sha256: m[2] === '-' ? null : m[2]!, wanted: Number(m[3]), resolved, content: split.rest };
}

export async function readArtifact(ctx: ArtifactContext, args: ReadArtifactArgs): Promise<ExecutionResult> {
  const first = await runScript(ctx, readScript(args.path, args.maxBytes, args.includeSha256, INLINE_READ_BYTES));
  if (first.exitCode !== 0 || first.timedOut) return scriptFailure(ctx, first, args.path, 'Not a file');
  let read = parseRead(first);
  const sha256 = read?.sha256 ?? null;
  if (read && read.wanted > INLINE_READ_BYTES) {
    // Too big for the executor's capture: read it again over a one-shot exec that keeps stdout whole.
    const second = await execScript(ctx, readScript(args.path, args.maxBytes, false, args.maxBytes));
    if (second.exitCode !== 0 || second.timedOut) return scriptFailure(ctx, second, args.path, 'Not a file');
    read = parseRead(second);
  }
  if (!read) return failure(ctx.item, 'INTERNAL', `Unexpected output while reading ${args.path}`, { durationMs: Date.now() - ctx.startedAtMs });
  const bytes = read.content.length;
  const rel = relativeToWorkspace(read.resolved);
  const payload: ReadArtifactPayload = {
    content: args.encoding === 'base64' ? read.content.toString('base64') : decoder.decode(read.content),
    encoding: args.encoding,
    truncated: bytes < read.fileSize,
    bytes,
    fileSize: read.fileSize,
    path: rel,
    mime: mimeOf(rel),
    sha256,
  };
  return succeed(ctx.item, `Read ${bytes} of ${read.fileSize} bytes from ${rel}`, Date.now() - ctx.startedAtMs, { path: rel, artifact: payload });
}
