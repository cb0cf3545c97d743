import type { ArtifactEntry, ListArtifactsArgs, ListArtifactsPayload } from '../../shared/calls/artifact-schemas.js';
import type { ExecutionResult } from '../../shared/calls/schemas.js';
import { runScript, scriptFailure, splitNul, type ArtifactContext } from './artifact-context.js';
import { failure, succeed } from './call-result.js';
import { HELPER_BIN } from '../executor/helper-bundle.js';
import { EXIT, relativeToWorkspace, resolvePathScript, resolveScript, shellQuote } from './workspace-path.js';

/** find's test for a symlink: true unless its target (resolved as far as it goes) leaves the workspace. */
const KEEP_LINK = `( ${resolveScript('"$PWD/$1"', false)}\n); [ $? -ne ${EXIT.outside} ]`;

const BUSYBOX = `${HELPER_BIN}/busybox`;

/** Swaps NUL and newline, so line tools (head) can cut NUL-terminated records. */
const SWAP = "tr '\\0\\n' '\\n\\0'";

/**
 * Prints `<d|f>\0<resolved>\0`, then the entries' names NUL-terminated (sorted bytewise, cut after limit + 1
 * so the worker can tell whether anything was left out) and an empty record, then `stat -L` records
 * (`<hex mode> <size> <mtime s> <name>\n`, the target's for a symlink, like the original's Python stat),
 * a NUL, and plain `stat` records (for links whose target is missing). find does not follow symlinks; a
 * symlink whose target leaves the workspace is skipped. Everything here is busybox.
 */
function listScript(path: string, recursive: boolean, limit: number): string {
  const depth = recursive ? '' : '-maxdepth 1 ';
  return [
    resolvePathScript(path, true),
    'T=$(mktemp -p /run/slotq 2>/dev/null || mktemp) || exit 1',
    'trap \'rm -f "$T"\' EXIT',
    'if [ -d "$p" ]; then',
    '  cd "$p" || exit 1',
    `  find . -mindepth 1 ${depth}\\( -type l -exec sh -c ${shellQuote(KEEP_LINK)} sh {} \\; -o ! -type l \\) -print0 | LC_ALL=C sort -z | ${SWAP} | head -n ${limit + 1} | ${SWAP} > "$T"`,
    '  t=d',
    'elif [ -f "$p" ]; then',
    '  printf \'%s\\0\' "$p" > "$T"; t=f',
    `else exit ${EXIT.notFile}; fi`,
    'printf \'%s\\0%s\\0\' "$t" "$p"',
    'cat "$T"; printf \'\\0\'',
    // `busybox stat`, not `stat`: busybox's xargs runs a NOFORK applet in-process and garbles its arguments.
    `xargs -0 -r ${BUSYBOX} stat -L -c '%f %s %Y %n' < "$T" 2>/dev/null; printf '\\0'`,
    `xargs -0 -r ${BUSYBOX} stat -c '%f %s %Y %n' < "$T" 2>/dev/null`,
    'exit 0',
  ].join('\n');
}

const S_IFMT = 0xf000;
const S_IFDIR = 0x4000;

/** Reads the stat records of `names` (in order; a record may be missing) from text. */
function statRecords(text: string, names: string[]): Map<string, { mode: number; size: number; mtimeS: number }> {
  const out = new Map<string, { mode: number; size: number; mtimeS: number }>();
  let at = 0;
  const head = /^([0-9a-f]+) (\d+) (\d+) /;
  for (const name of names) {
    const m = head.exec(text.slice(at, at + 64));
    if (!m || !text.startsWith(`${name}\n`, at + m[0].length)) continue; // no record for this one
    out.set(name, { mode: parseInt(m[1]!, 16), size: Number(m[2]), mtimeS: Number(m[3]) });
    at += m[0].length + name.length + 1;
  }
  return out;
}

function parseList(stdout: Buffer): { kind: string; resolved: string; names: string[]; entries: (base: string) => ArtifactEntry[] } | undefined {
  const head = splitNul(stdout, 2);
  if (!head) return undefined;
  const [kind = '', resolved = ''] = head.fields;
  const text = head.rest.toString('utf8');
  const end = text.indexOf('\0\0');
  if (end < 0) return undefined;
  const names = end === 0 ? [] : text.slice(0, end).split('\0');
  const [followed = '', plain = ''] = text.slice(end + 2).split('\0');
  const deref = statRecords(followed, names);
  const own = statRecords(plain, names);
  const entries = (base: string): ArtifactEntry[] =>
    names.flatMap((name) => {
      const st = deref.get(name) ?? own.get(name);
      if (!st) return []; // gone between find and stat
      const sub = kind === 'f' ? '' : name.replace(/^\.\//, '');
      return [{ path: sub === '' ? base : base === '.' ? sub : `${base}/${sub}`, isDir: (st.mode & S_IFMT) === S_IFDIR, size: st.size, mtimeMs: st.mtimeS * 1000 }];
    });
  return { kind, resolved, names, entries };
}

export async function listArtifacts(ctx: ArtifactContext, args: ListArtifactsArgs): Promise<ExecutionResult> {
  const out = await runScript(ctx, listScript(args.path, args.recursive, args.maxEntries), { wholeStdout: true });
  if (out.exitCode !== 0 || out.timedOut) return scriptFailure(ctx, out, args.path, 'Unsupported path type (neither a file nor a directory)');
  const parsed = parseList(out.stdout);
  if (!parsed) return failure(ctx.item, 'INTERNAL', `Unexpected output while listing ${args.path}`, { durationMs: Date.now() - ctx.startedAtMs });
  const base = relativeToWorkspace(parsed.resolved);
  const entries = parsed.entries(base);
  const truncated = parsed.names.length > args.maxEntries;
  if (entries.length > args.maxEntries) entries.length = args.maxEntries;
  const payload: ListArtifactsPayload = { entries, truncated };
  const summary = `${entries.length} entries under ${base}${truncated ? ` (truncated at maxEntries=${args.maxEntries})` : ''}`;
  return succeed(ctx.item, summary, Date.now() - ctx.startedAtMs, { path: base, artifact: payload });
}
