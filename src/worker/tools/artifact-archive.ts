import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack, type Pack } from 'tar-stream';
import { ARTIFACT_MAX_BYTES, type ArchiveArtifactsArgs, type ArchiveArtifactsPayload } from '../../shared/calls/artifact-schemas.js';
import { toError } from '../../shared/errors.js';
import type { ExecutionResult } from '../../shared/calls/schemas.js';
import { remainingMs, runScript, scriptFailure, splitNul, type ArtifactContext } from './artifact-context.js';
import { raceDeadline } from '../../shared/deadline.js';
import { failure, succeed } from './call-result.js';
import { EXIT, relativeToWorkspace, resolvePathScript } from './workspace-path.js';
import { S_IFMT, S_IFREG, readCpio } from './cpio-reader.js';

/** Past maxBytes the archive is still compressed (and dropped) up to this size, to report its size. */
export const ARCHIVE_SCAN_BYTES = 2 * ARTIFACT_MAX_BYTES;

export interface RepackOptions {
  /** The source is a directory's tar (members named `./…`) rather than one file's (named by its base name). */
  dir: boolean;
  maxBytes: number;
  maxEntries: number;
  timeoutMs: number;
}
export type RepackResult =
  | { kind: 'ok'; data: Buffer; bytes: number; entryCount: number; truncated: boolean }
  | { kind: 'tooLarge'; bytes: number; exact: boolean }
  | { kind: 'timeout' };

/** Keeps gzip output up to keepBytes, then only counts it; fails the pipeline past scanBytes. */
class ByteSink extends Writable {
  chunks: Buffer[] = [];
  bytes = 0;
  constructor(
    private readonly keepBytes: number,
    readonly scanBytes: number,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes <= this.keepBytes) this.chunks.push(chunk);
    else this.chunks = [];
    cb(this.bytes > this.scanBytes ? new Error(`archive passed ${this.scanBytes} bytes`) : null);
  }
}

/** A member's name relative to the archived path; undefined for anything that must not be archived. */
function memberName(name: string, dir: boolean): string | undefined {
  if (!dir) return name.includes('/') || name === '' ? undefined : name; // one file is archived under its base name
  const rel = name.replace(/^\.\//, '').replace(/\/+$/, ''); // busybox cpio drops the leading ./ itself
  return rel === '' || rel.startsWith('/') || rel.split('/').some((c) => c === '..' || c === '.' || c === '') ? undefined : rel;
}

type Header = { name: string; mode: number; mtime: Date; uid: number; gid: number };

/**
 * Copies regular files from the container's cpio stream into the tar, named relative to the archived path.
 * Hard links among them become one file and links to it (cpio carries their data with the group's last
 * member). Anything else (symlinks, directories, devices, FIFOs, names that are not plainly relative) is left
 * out. Stops after maxEntries members.
 */
async function copyMembers(src: Readable, out: Pack, maxEntries: number, dir: boolean): Promise<{ entryCount: number; truncated: boolean }> {
  let count = 0;
  const groups = new Map<number, Header[]>();
  const addLinks = async (first: string, rest: Header[]): Promise<void> => {
    for (const h of rest) await new Promise<void>((resolve, reject) => out.entry({ ...h, type: 'link', linkname: first }, (err) => (err ? reject(err) : resolve())));
  };
  // A member counts when it is written: hard-linked members wait (uncounted) for the one with the data.
  const waiting = (): number => [...groups.values()].reduce((n, g) => n + g.length, 0);
  for await (const { entry: e, body } of readCpio(src)) {
    const name = memberName(e.name, dir);
    if (!name || (e.mode & S_IFMT) !== S_IFREG) continue;
    if (count + waiting() >= maxEntries) return { entryCount: count, truncated: true };
    const header: Header = { name, mode: e.mode & 0o7777, mtime: new Date(e.mtimeS * 1000), uid: e.uid, gid: e.gid };
    if (e.nlink > 1) {
      const group = [...(groups.get(e.ino) ?? []), header];
      if (e.size === 0) {
        groups.set(e.ino, group);
        continue;
      }
      groups.delete(e.ino);
      const [first, ...rest] = group.sort((a, b) => (a.name < b.name ? -1 : 1)); // the file under its first name
      await pipeline(Readable.from(body()), out.entry({ ...first!, type: 'file', size: e.size }));
      await addLinks(first!.name, rest);
      count += group.length;
      continue;
    }
    await pipeline(Readable.from(body()), out.entry({ ...header, type: 'file', size: e.size }));
    count++;
  }
  for (const group of groups.values()) {
    const [first, ...rest] = group.sort((a, b) => (a.name < b.name ? -1 : 1));
    // Empty hard-linked files: no member carried data.
    await pipeline(Readable.from([]), out.entry({ ...first!, type: 'file', size: 0 }));
    await addLinks(first!.name, rest);
    count += group.length;
  }
  return { entryCount: count, truncated: false };
}

/** Re-packs the container's cpio stream as a gzip tar (tar-stream + node:zlib), bounded in memory by maxBytes. */
export async function repackArchive(src: Readable, opts: RepackOptions): Promise<RepackResult> {
  const out = pack();
  const sink = new ByteSink(opts.maxBytes, Math.max(ARCHIVE_SCAN_BYTES, opts.maxBytes));
  const packed = pipeline(out, createGzip(), sink).then(() => undefined, (e: unknown) => toError(e));
  const abort = (err: Error): void => void src.destroy(err);
  void packed.then((err) => err && abort(err)); // e.g. past scanBytes: stop reading the source too
  let timedOut = false;
  const timer = setTimeout(() => ((timedOut = true), abort(new Error('archive deadline passed'))), opts.timeoutMs);
  try {
    const copied = await copyMembers(src, out, opts.maxEntries, opts.dir);
    out.finalize();
    const packErr = await packed;
    if (sink.bytes > sink.scanBytes) return { kind: 'tooLarge', bytes: sink.bytes, exact: false };
    if (packErr) throw packErr;
    if (sink.bytes > opts.maxBytes) return { kind: 'tooLarge', bytes: sink.bytes, exact: true };
    return { kind: 'ok', data: Buffer.concat(sink.chunks, sink.bytes), bytes: sink.bytes, ...copied };
  } catch (err) {
    if (sink.bytes > sink.scanBytes) return { kind: 'tooLarge', bytes: sink.bytes, exact: false };
    if (timedOut) return { kind: 'timeout' };
    throw err;
  } finally {
    clearTimeout(timer);
    src.destroy();
    if (!out.destroyed) out.destroy();
  }
}

/** Resolves and checks the path (good error codes before anything streams); prints `<d|f>\0<resolved>\0`. */
function probeScript(path: string): string {
  return [
    resolvePathScript(path, true),
    `if [ -d "$p" ]; then t=d; elif [ -f "$p" ]; then t=f; else exit ${EXIT.notFile}; fi`,
    `[ -r "$p" ] || exit ${EXIT.unreadable}`,
    `printf '%s\\0' "$t" "$p"`,
  ].join('\n');
}

/**
 * Streams a newc cpio of the path's regular files (find does not follow symlinks), sorted by path and cut
 * after maxMembers in the container; a file is archived under its base name. Busybox only: the worker
 * re-packs it as a gzip tar.
 */
function cpioScript(path: string, maxMembers: number): string {
  const swap = "tr '\\0\\n' '\\n\\0'";
  return [
    resolvePathScript(path, true),
    'if [ -d "$p" ]; then',
    '  cd "$p" || exit 1',
    `  find . -type f -print0 | LC_ALL=C sort -z | ${swap} | head -n ${maxMembers} | ${swap} | cpio -o -H newc -0`,
    'elif [ -f "$p" ]; then',
    '  cd "${p%/*}/" || exit 1',
    '  printf \'%s\\0\' "${p##*/}" | cpio -o -H newc -0',
    `else exit ${EXIT.notFile}; fi`,
  ].join('\n');
}

/** Runs cpioScript over a streamed exec and re-packs its output; stderr (bounded) explains a failure. */
async function streamArchive(ctx: ArtifactContext, args: ArchiveArtifactsArgs, dir: boolean): Promise<RepackResult | { kind: 'failed'; why: string }> {
  const budgetMs = remainingMs(ctx);
  const proc = await raceDeadline(ctx.io.stream(cpioScript(args.path, args.maxEntries + 1), budgetMs), budgetMs, (p) => p.close());
  if (proc === 'late') return { kind: 'timeout' };
  let stderr = '';
  // cpio reports "N blocks" on stderr: that is not an error.
  proc.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).replace(/^\d+ blocks\n?/gm, '').slice(-2000)));
  try {
    const r = await repackArchive(proc.stdout, { dir, maxBytes: args.maxBytes, maxEntries: args.maxEntries, timeoutMs: remainingMs(ctx) });
    if (r.kind === 'ok' && r.entryCount === 0 && stderr.trim()) return { kind: 'failed', why: stderr.trim() };
    return r;
  } catch (err) {
    return { kind: 'failed', why: stderr.trim() || toError(err).message };
  } finally {
    proc.close();
  }
}

export async function archiveArtifacts(ctx: ArtifactContext, args: ArchiveArtifactsArgs): Promise<ExecutionResult> {
  const probe = await runScript(ctx, probeScript(args.path));
  if (probe.exitCode !== 0 || probe.timedOut) return scriptFailure(ctx, probe, args.path, 'Unsupported path type (neither a file nor a directory)');
  const [type, resolved = ''] = splitNul(probe.stdout, 2)?.fields ?? [];
  const meta = (): { durationMs: number; path: string } => ({ durationMs: Date.now() - ctx.startedAtMs, path: relativeToWorkspace(resolved) });
  if (type !== 'd' && type !== 'f') return failure(ctx.item, 'INTERNAL', `Unexpected output while archiving ${args.path}`, meta());
  const r = await streamArchive(ctx, args, type === 'd');
  switch (r.kind) {
    case 'timeout':
      return failure(ctx.item, 'TIMEOUT', `Artifact call timed out after ${ctx.timeoutS}s`, { ...meta(), timedOut: true });
    case 'failed':
      return failure(ctx.item, 'TOOL_FAILED', `Archiving ${args.path} failed: ${r.why}`, meta());
    case 'tooLarge':
      return failure(ctx.item, 'TOO_LARGE', `Archive too large: ${r.exact ? '' : 'more than '}${r.bytes} bytes (max ${args.maxBytes})`, { ...meta(), bytes: r.bytes });
    case 'ok': {
      const payload: ArchiveArtifactsPayload = { content: r.data.toString('base64'), encoding: 'base64', format: 'tar.gz', bytes: r.bytes, entryCount: r.entryCount, truncated: r.truncated };
      const summary = `Archived ${r.entryCount} file(s) under ${meta().path} into ${r.bytes} bytes of tar.gz${r.truncated ? ` (truncated at maxEntries=${args.maxEntries})` : ''}`;
      return succeed(ctx.item, summary, meta().durationMs, { path: meta().path, artifact: payload });
    }
  }
}
