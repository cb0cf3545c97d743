import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { EMPTY_TREE_DIGEST, treeDigest } from '../../src/worker/executor/helper-digest.js';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; mode: number; linkname?: string; uid?: number; mtime?: Date; body?: string };
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => p.on('end', resolve));
  for (const e of entries) p.entry({ name: e.name, type: e.type ?? 'file', mode: e.mode, uid: e.uid ?? 0, mtime: e.mtime ?? new Date(0), ...(e.linkname ? { linkname: e.linkname } : {}) }, e.body ?? '');
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const bundle: Entry[] = [
  { name: 'bin', type: 'directory', mode: 0o755 },
  { name: 'bin/busybox', mode: 0o755, body: 'ELF...' },
  { name: 'bin/sh', type: 'symlink', linkname: 'busybox', mode: 0o777 },
  { name: 'complete', mode: 0o644, body: 'slotq helper\n' },
];

describe('treeDigest', () => {
  it('is the same for the bundle and for the volume read back under its mount (order, owners, times and ./ aside)', async () => {
    const readBack: Entry[] = [
      { name: 'v/', type: 'directory', mode: 0o755, uid: 0 },
      ...[...bundle].reverse().map((e) => ({ ...e, name: `v/${e.name}${e.type === 'directory' ? '/' : ''}`, uid: 1000, mtime: new Date() })),
    ];
    const dotted = bundle.map((e) => ({ ...e, name: `./${e.name}` }));
    const want = await treeDigest(await tarOf(bundle));
    expect(await treeDigest(await tarOf(readBack), 'v')).toBe(want);
    expect(await treeDigest(await tarOf([{ name: '.', type: 'directory', mode: 0o700 }, ...dotted]))).toBe(want);
    expect(await treeDigest(await tarOf([{ name: 'v/', type: 'directory', mode: 0o755 }]), 'v')).toBe(EMPTY_TREE_DIGEST);
  });

  it.each([
    ['a changed content', (b: Entry[]) => b.map((e) => (e.name === 'bin/busybox' ? { ...e, body: 'ELF..!' } : e))],
    ['a changed mode', (b: Entry[]) => b.map((e) => (e.name === 'bin/busybox' ? { ...e, mode: 0o4755 } : e))],
    ['a symlink pointing elsewhere', (b: Entry[]) => b.map((e) => (e.name === 'bin/sh' ? { ...e, linkname: '/tmp/evil' } : e))],
    ['a symlink made a file', (b: Entry[]) => b.map((e) => (e.name === 'bin/sh' ? { name: 'bin/sh', mode: 0o777, body: 'busybox' } : e))],
    ['a file added', (b: Entry[]) => [...b, { name: 'bin/extra', mode: 0o755, body: '' }]],
    ['a file missing (half filled)', (b: Entry[]) => b.filter((e) => e.name !== 'complete')],
  ])('changes with %s', async (_, change) => {
    expect(await treeDigest(await tarOf(change(bundle)))).not.toBe(await treeDigest(await tarOf(bundle)));
  });
});
