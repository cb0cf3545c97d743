import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { extract, pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { toArchiveArtifactsResult, toReadArtifactResult } from '../../src/producer/artifacts.js';
import type { ExecutionResult } from '../../src/shared/schemas.js';
import { repackArchive, type RepackOptions } from '../../src/worker/artifact-archive.js';

type Member = Partial<Header> & { name: string; body?: Buffer | string };

async function tarOf(members: Member[]): Promise<Buffer> {
  const p = pack();
  for (const { body, ...h } of members) p.entry(h, body ?? '');
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
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
const source = [
  { name: './', type: 'directory' },
  { name: './a.txt', body: 'alpha' },
  { name: './../evil', body: 'x' },
  { name: './sub/./x', body: 'x' },
  { name: 'no-dot-prefix', body: 'x' },
  { name: './link', type: 'symlink', linkname: '/etc/passwd' },
  { name: './fifo', type: 'fifo' },
  { name: './hard', type: 'link', linkname: './a.txt' },
  { name: './orphan', type: 'link', linkname: './missing' },
  { name: './sub/b', body: 'bee' },
] satisfies Member[];

describe('repackArchive (tar-stream + zlib, no Docker)', () => {
  it('keeps regular files and hard links to kept files, named relative to the directory', async () => {
    const r = await repackArchive(Readable.from([await tarOf(source)]), opts());
    if (r.kind !== 'ok') throw new Error(r.kind);
    expect(r).toMatchObject({ entryCount: 3, truncated: false, bytes: r.data.length });
    expect(await membersOf(r.data)).toEqual([
      ['a.txt', 'file', 'alpha'],
      ['hard', 'link', 'a.txt'],
      ['sub/b', 'file', 'bee'],
    ]);
  });

  it('stops after maxEntries and says so only when a member was left out', async () => {
    const src = async () => Readable.from([await tarOf(source)]);
    expect(await repackArchive(await src(), opts({ maxEntries: 2 }))).toMatchObject({ kind: 'ok', entryCount: 2, truncated: true });
    expect(await repackArchive(await src(), opts({ maxEntries: 3 }))).toMatchObject({ kind: 'ok', entryCount: 3, truncated: false });
  });

  it('archives one file under its base name', async () => {
    const r = await repackArchive(Readable.from([await tarOf([{ name: 'f.txt', body: 'one' }, { name: 'x/y', body: 'no' }])]), opts({ dir: false }));
    expect(r.kind === 'ok' && (await membersOf(r.data))).toEqual([['f.txt', 'file', 'one']]);
  });

  it('reports the exact size just over maxBytes, and stops compressing far over it', async () => {
    const tar = await tarOf([{ name: './r', body: randomBytes(100_000) }]);
    const ok = await repackArchive(Readable.from([tar]), opts());
    if (ok.kind !== 'ok') throw new Error(ok.kind);
    expect(await repackArchive(Readable.from([tar]), opts({ maxBytes: ok.bytes - 1 }))).toEqual({ kind: 'tooLarge', bytes: ok.bytes, exact: true });
    const huge = await tarOf([{ name: './r', body: randomBytes(11_000_000) }]);
    const far = await repackArchive(Readable.from([huge]), opts({ maxBytes: 1000 }));
    expect(far).toMatchObject({ kind: 'tooLarge', exact: false });
  });

  it('gives up at the deadline on a source that never ends', async () => {
    const src = new PassThrough();
    src.write((await tarOf([{ name: './a', body: 'a' }])).subarray(0, 1024));
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
