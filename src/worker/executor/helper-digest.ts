import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';

/**
 * A digest of a file tree given as a tar: every member's path, type, permission bits, link target and
 * content's sha256, sorted by path (owners and times left out: the engine's archive API sets its own).
 * The helper bundle's tar and the helper volume read back through the engine hash the same when, and only
 * when, the volume holds exactly the bundle: a changed, added or missing file changes it.
 */
export async function treeDigest(tar: Buffer | NodeJS.ReadableStream, root = ''): Promise<string> {
  const lines: string[] = [];
  const ex = extract();
  const fed = pipeline(Buffer.isBuffer(tar) ? Readable.from([tar]) : (tar), ex);
  for await (const entry of ex) {
    const h = createHash('sha256');
    for await (const chunk of entry) h.update(chunk as Buffer);
    const name = relativeName(entry.header.name, root);
    if (name === '') continue;
    lines.push(JSON.stringify([name, entry.header.type, ((entry.header.mode ?? 0) & 0o7777).toString(8), entry.header.linkname ?? '', h.digest('hex')]));
  }
  await fed;
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex');
}

/** The member's path under root, without ./ and trailing slashes ('' for root itself). */
function relativeName(name: string, root: string): string {
  const n = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (!root) return n === '.' ? '' : n;
  if (n === root) return '';
  return n.startsWith(`${root}/`) ? n.slice(root.length + 1) : `../${n}`; // outside root: never in the bundle
}

/** What treeDigest gives for a tree with nothing in it (a new volume). */
export const EMPTY_TREE_DIGEST = createHash('sha256').update('').digest('hex');

/** The image the helper volume is filled through: nothing but an empty /v, imported by slotq itself (never a task image). */
export const FILL_IMAGE = 'slotq-helper-fill:1';
export const FILL_MOUNT = '/v';

/** The root filesystem of FILL_IMAGE, as a tar for `docker import`. */
export async function fillImageTar(): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => (p.on('end', resolve), p.on('error', reject)));
  p.entry({ name: FILL_MOUNT.slice(1), type: 'directory', mode: 0o755, mtime: new Date(0) });
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}
