import { execFile } from 'node:child_process';
import { lstat, opendir } from 'node:fs/promises';

const gone = (err: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '');

/** Whether `du` runs here (else the walk below does it, about 13 times slower on many small files). */
let duWorks = true;

/**
 * The bytes allocated under a directory, by `du -s -B1` (C: 0.3 s for 100 000 files here, where the walk
 * below takes 4 s); a directory that is gone is 0. Files that vanish during the walk make du exit 1 with the
 * total still printed.
 */
export async function allocatedBytes(dir: string): Promise<number> {
  if (duWorks) {
    const out = await new Promise<string | undefined>((resolve) => {
      execFile('du', ['-s', '-B1', dir], { maxBuffer: 1 << 20, timeout: 60_000 }, (err, stdout) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') duWorks = false;
        resolve(duWorks ? stdout : undefined);
      });
    });
    if (out !== undefined) return Number(/^(\d+)\s/.exec(out)?.[1] ?? 0);
  }
  return walkedBytes(dir);
}

/**
 * The bytes allocated under a directory, as `du` counts them: st_blocks × 512 of every entry (so sparse
 * files count what they hold, fallocate'd ones what they reserve, and ext4's delayed allocations already
 * count), hard links once. Entries that vanish meanwhile count nothing; a directory that is gone is 0.
 */
export async function walkedBytes(dir: string): Promise<number> {
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
