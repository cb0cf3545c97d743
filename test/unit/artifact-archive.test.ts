import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { toArchiveArtifactsResult, toReadArtifactResult } from '../../src/producer/artifacts.js';
import type { ExecutionResult } from '../../src/shared/calls/schemas.js';
import { repackArchive, type RepackOptions } from '../../src/worker/tools/artifact-archive.js';

/** A cpio member as busybox `cpio -o -H newc` writes it. */
type Member = { name: string; type?: 'file' | 'directory' | 'symlink' | 'fifo'; ino?: number; nlink?: number; body?: Buffer | string };
const TYPE_BITS = { file: 0o100000, directory: 0o040000, symlink: 0o120000, fifo: 0o010000 } as const;

/** Writes a newc cpio stream (110-byte hex headers, names and bodies padded to 4 bytes). */
function cpioOf(members: Member[]): Buffer {
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const parts: Buffer[] = [];
  let ino = 100;
  for (const m of [...members, { name: 'TRAILER!!!' }]) {
    const body = Buffer.from(m.body ?? '');
    const name = Buffer.from(`${m.name}\0`);
    const mode = m.name === 'TRAILER!!!' ? 0 : TYPE_BITS[m.type ?? 'file'] | 0o644;
    const fields = [m.ino ?? ino++, mode, 0, 0, m.nlink ?? 1, 1_700_000_000, body.length, 0, 0, 0, 0, name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`, 'latin1');
    parts.push(header, name, pad(header.length + name.length), body, pad(body.length));
  }
  return Buffer.concat(parts);
}

async function membersOf(gz: Buffer): Promise<Array<[string, string, string]>> {
  const ex = extract();
  const fed = pipeline(Readable.from([gunzipSync(gz)]), ex);
  const out: Array<[string, string, string]> = [];
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out.push([e.header.name, e.header.type, e.header.type === 'link' ? e.header.linkname : Buffer.concat(chunks).toString()]);
  }
  await fed;
  return out;
}

const opts = (o: Partial<RepackOptions> = {}): RepackOptions => ({ dir: true, maxBytes: 5_000_000, maxEntries: 5000, timeoutMs: 10_000, ...o });
// Hard-linked files come last, as busybox writes them: the group's earlier members empty, the last with the data.
const source = [
  { name: '.', type: 'directory' },
  { name: './../evil', body: 'x' },
  { name: './sub/./x', body: 'x' },
  { name: '/abs', body: 'x' },
  { name: './link', type: 'symlink', body: '/etc/passwd' },
  { name: './fifo', type: 'fifo' },
  { name: './sub/b', body: 'bee' },
  { name: './a.txt', ino: 7, nlink: 2 },
  { name: './hard', ino: 7, nlink: 2, body: 'alpha' },
] satisfies Member[];

describe('repackArchive (cpio in, tar-stream + zlib out, no Docker)', () => {
  it('keeps regular files and hard links to kept files, named relative to the directory', async () => {
    const r = await repackArchive(Readable.from([cpioOf(source)]), opts());
    if (r.kind !== 'ok') throw new Error(r.kind);
    expect(r).toMatchObject({ entryCount: 3, truncated: false, bytes: r.data.length });
    expect(await membersOf(r.data)).toEqual([
      ['sub/b', 'file', 'bee'],
      ['a.txt', 'file', 'alpha'],
      ['hard', 'link', 'a.txt'],
    ]);
  });

  it('stops after maxEntries and says so only when a member was left out', async () => {
    const src = (): Readable => Readable.from([cpioOf(source)]);
    // sub/b fits; the hard-linked pair a.txt + hard would make 3: left out together, never half-written.
    expect(await repackArchive(src(), opts({ maxEntries: 2 }))).toMatchObject({ kind: 'ok', entryCount: 1, truncated: true });
    expect(await repackArchive(src(), opts({ maxEntries: 3 }))).toMatchObject({ kind: 'ok', entryCount: 3, truncated: false });
  });

  it('archives one file under its base name', async () => {
    const r = await repackArchive(Readable.from([cpioOf([{ name: 'f.txt', body: 'one' }, { name: 'x/y', body: 'no' }])]), opts({ dir: false }));
    expect(r.kind === 'ok' && (await membersOf(r.data))).toEqual([['f.txt', 'file', 'one']]);
  });

  it('reports the exact size just over maxBytes, and stops compressing far over it', async () => {
    const tar = cpioOf([{ name: './r', body: randomBytes(100_000) }]);
    const ok = await repackArchive(Readable.from([tar]), opts());
    if (ok.kind !== 'ok') throw new Error(ok.kind);
    expect(await repackArchive(Readable.from([tar]), opts({ maxBytes: ok.bytes - 1 }))).toEqual({ kind: 'tooLarge', bytes: ok.bytes, exact: true });
    const huge = cpioOf([{ name: './r', body: randomBytes(11_000_000) }]);
    const far = await repackArchive(Readable.from([huge]), opts({ maxBytes: 1000 }));
    expect(far).toMatchObject({ kind: 'tooLarge', exact: false });
  });

  it('gives up at the deadline on a source that never ends', async () => {
    const src = new PassThrough();
    src.write(cpioOf([{ name: './a', body: 'a'.repeat(5000) }]).subarray(0, 1024));
    expect(await repackArchive(src, opts({ timeoutMs: 50 }))).toEqual({ kind: 'timeout' });
  });
});

describe('producer mapping of artifact results', () => {
  const base = { output: '', executionId: 'e', slotId: 's' };
  it('turns a failed call into { success: false, error, code, retryable } with bytes when set', () => {
    const r: ExecutionResult = { ...base, success: false, error: 'Archive too large', metadata: { durationMs: 1, code: 'TOO_LARGE', retryable: false, bytes: 12 } };
    expect(toArchiveArtifactsResult(r)).toEqual({ success: false, error: 'Archive too large', code: 'TOO_LARGE', retryable: false, bytes: 12 });
  });
  it('refuses a payload that does not match its schema as INTERNAL', () => {
    const r: ExecutionResult = { ...base, success: true, error: '', metadata: { durationMs: 1, artifact: { content: 1 } } };
    expect(toReadArtifactResult(r)).toMatchObject({ success: false, code: 'INTERNAL', retryable: true });
  });
});
