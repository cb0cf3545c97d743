import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { pack, type Pack } from 'tar-stream';

/**
 * A tar stream of a local directory's contents (member names relative to it): directories, regular files
 * and symlinks, with their modes and mtimes. Other kinds (sockets, devices) are left out.
 */
export function packDirectory(dir: string): Readable {
  const p = pack();
  walk(p, dir, '').then(
    () => p.finalize(),
    (err: unknown) => p.destroy(err as Error),
  );
  return p as unknown as Readable;
}

async function walk(p: Pack, root: string, rel: string): Promise<void> {
  const names = (await readdir(join(root, rel))).sort();
  for (const name of names) {
    const relPath = rel ? `${rel}/${name}` : name;
    const abs = join(root, relPath);
    const st = await lstat(abs);
    const common = { name: relPath, mode: st.mode & 0o7777, mtime: st.mtime };
    if (st.isDirectory()) {
      await entry(p, { ...common, type: 'directory' });
      await walk(p, root, relPath);
    } else if (st.isSymbolicLink()) {
      await entry(p, { ...common, type: 'symlink', linkname: await readlink(abs) });
    } else if (st.isFile()) {
      const sink = p.entry({ ...common, type: 'file', size: st.size });
      await pipeline(createReadStream(abs), sink);
    }
  }
}

function entry(p: Pack, header: Parameters<Pack['entry']>[0]): Promise<void> {
  return new Promise((resolve, reject) => p.entry(header, (err) => (err ? reject(err) : resolve())));
}
