import type { ArtifactEntry, ListArtifactsArgs, ListArtifactsPayload } from '../shared/artifact-schemas.js';
import { WORKSPACE_DIR, type ExecutionResult } from '../shared/schemas.js';
import { runScript, scriptFailure, type ArtifactContext } from './artifact-context.js';
import { failure, succeed } from './call-result.js';
import { EXIT, relativeToWorkspace, resolvePathScript, shellQuote } from './workspace-path.js';

/** find's test for a symlink: true when its target (resolved, dangling allowed) stays in the workspace. */
const KEEP_LINK = `r=$(realpath -m -- "$1" 2>/dev/null) || exit 1; case "$r" in ${WORKSPACE_DIR}|${WORKSPACE_DIR}/*) exit 0 ;; esac; exit 1`;

/**
 * Prints the resolved path NUL-terminated, then one record per entry, `<type><targetType> <size> <mtime> <path>\0`,
 * sorted by path (bytewise) and cut after limit + 1 records in the container, so the output stays bounded
 * and the worker can tell whether anything was left out. find does not follow symlinks; a symlink whose
 * target leaves the workspace is skipped.
 */
function listScript(path: string, recursive: boolean, limit: number): string {
  const depth = recursive ? '' : '-maxdepth 1 ';
  return [
    resolvePathScript(path, true),
    `printf '%s\\0' "$p"`,
    'if [ -d "$p" ]; then',
    '  cd -- "$p" || exit 1',
    `  find . -mindepth 1 ${depth}\\( -type l -exec sh -c ${shellQuote(KEEP_LINK)} sh {} \\; -o ! -type l \\) -printf '%y%Y %s %T@ %P\\0' 2>/dev/null | LC_ALL=C sort -z -t ' ' -k4 | head -z -n ${limit + 1}`,
    'elif [ -f "$p" ]; then',
    `  find "$p" -maxdepth 0 -printf '%y%Y %s %T@ \\0'`,
    `else exit ${EXIT.notFile}; fi`,
  ].join('\n');
}

const RECORD = /^(.)(.) (\d+) ([-\d.e+]+) ([\s\S]*)$/;

function parseEntries(records: string[], base: string): ArtifactEntry[] | undefined {
  const entries: ArtifactEntry[] = [];
  for (const rec of records) {
    const m = RECORD.exec(rec);
    if (!m) return undefined;
    const sub = m[5]!;
    entries.push({
      path: sub === '' ? base : base === '.' ? sub : `${base}/${sub}`,
      isDir: m[2] === 'd',
      size: Number(m[3]),
      mtimeMs: Math.round(Number(m[4]) * 1000),
    });
  }
  return entries;
}

export async function listArtifacts(ctx: ArtifactContext, args: ListArtifactsArgs): Promise<ExecutionResult> {
  const out = await runScript(ctx, listScript(args.path, args.recursive, args.maxEntries), { wholeStdout: true });
  if (out.exitCode !== 0 || out.timedOut) return scriptFailure(ctx, out, args.path, 'Unsupported path type (neither a file nor a directory)');
  const [resolved = '', ...records] = out.stdout.toString('utf8').split('\0');
  records.pop(); // after the last NUL
  const base = relativeToWorkspace(resolved);
  const entries = parseEntries(records, base);
  if (!entries) return failure(ctx.item, 'INTERNAL', `Unexpected output while listing ${args.path}`, { durationMs: Date.now() - ctx.startedAtMs });
  const truncated = entries.length > args.maxEntries;
  if (truncated) entries.length = args.maxEntries;
  const payload: ListArtifactsPayload = { entries, truncated };
  const summary = `${entries.length} entries under ${base}${truncated ? ` (truncated at maxEntries=${args.maxEntries})` : ''}`;
  return succeed(ctx.item, summary, Date.now() - ctx.startedAtMs, { path: base, artifact: payload });
}
