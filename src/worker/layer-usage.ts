import { lstat, opendir } from 'node:fs/promises';

const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/**
 * The bytes allocated under a directory, as `du` counts them: st_blocks × 512 of every entry (so sparse
 * files count what they hold, fallocate'd ones what they reserve, and ext4's delayed allocations already
 * count), hard links once. Entries that vanish meanwhile count nothing; a directory that is gone is 0.
 */
export async function allocatedBytes(dir: string): Promise<number> {
  const linked = new Set<string>();
  let total = 0;
  const walk = async (path: string): Promise<void> => {
    let entries;
    try {
      entries = await opendir(path, { bufferSize: 256 });
    } catch (err) {
      if (gone(err)) return;
      throw err;
    }
    for await (const e of entries) {
      const p = `${path}/${e.name}`;
      const st = await lstat(p).catch((err: unknown) => {
        if (gone(err)) return undefined;
        throw err;
      });
      if (!st) continue;
      if (st.nlink > 1 && !st.isDirectory()) {
        const key = `${st.dev}:${st.ino}`;
        if (linked.has(key)) continue;
        linked.add(key);
      }
      total += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  const root = await lstat(dir).catch((err: unknown) => {
    if (gone(err)) return undefined;
    throw err;
  });
  if (!root) return 0;
  await walk(dir);
  return total + root.blocks * 512;
}
