import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendStoppedError, InvalidArgsError, archiveArtifactsResultSchema, listArtifactsResultSchema, readArtifactResultSchema, type ArchiveArtifactsResult, type SlotBackend, type Slot } from '../../src/index.js';
import { harness, type Harness } from '../support/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function setup(): Promise<{ b: SlotBackend; s: Slot }> {
  h = harness();
  await h.worker({ slots: 1 });
  const b = await h.backend();
  return { b, s: await b.acquire() };
}

/** Runs a shell command in the slot and returns its stdout (fails the test when it fails). */
async function sh(b: SlotBackend, s: Slot, command: string): Promise<string> {
  const [r] = await b.executeBatch([[s, 'bash', { command, timeout: 120 }]]);
  expect(r, command).toMatchObject({ success: true });
  return r!.output;
}

/** Unpacks a successful archive result: members in archive order with their type and contents. */
async function untar(r: ArchiveArtifactsResult): Promise<Array<{ name: string; type: string; data: Buffer }>> {
  if (!r.success) throw new Error(`archive failed: ${r.code} ${r.error}`);
  const raw = Buffer.from(r.content, 'base64');
  expect(raw.length).toBe(r.bytes);
  const members: Array<{ name: string; type: string; data: Buffer }> = [];
  const ex = extract();
  const fed = pipeline(Readable.from([gunzipSync(raw)]), ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    members.push({ name: entry.header.name, type: entry.header.type, data: Buffer.concat(chunks) });
  }
  await fed;
  return members;
}

const names = (entries: ReadonlyArray<{ path: string }>): string[] => entries.map((e) => e.path);

describe('artifact helpers: round trips through a live worker', () => {
  it('lists files written through the tools, sorted, with and without recursion', async () => {
    const { b, s } = await setup();
    const res = await b.executeBatch([
      [s, 'write_file', { path: 'a.txt', content: 'hello' }],
      [s, 'write_file', { path: 'dir/b.txt', content: 'bee' }],
      [s, 'write_file', { path: 'dir/sub/c.txt', content: 'sea' }],
      [s, 'bash', { command: 'mkdir empty && ln -s a.txt link-in && ln -s dir dir-link' }],
    ]);
    expect(res.every((r) => r.success)).toBe(true);
    const flat = await b.listArtifacts(s);
    expect(listArtifactsResultSchema.parse(flat)).toEqual(flat);
    if (!flat.success) throw new Error(flat.error);
    expect(names(flat.entries)).toEqual(['a.txt', 'dir', 'dir-link', 'empty', 'link-in']);
    expect(flat.truncated).toBe(false);
    const a = flat.entries[0]!;
    expect(a).toMatchObject({ isDir: false, size: 5 });
    expect(Math.abs(a.mtimeMs - Date.now())).toBeLessThan(10 * 60_000);
    expect(flat.entries.find((e) => e.path === 'dir-link')!.isDir).toBe(true); // a symlink to a directory inside
    const deep = await b.listArtifacts(s, '.', { recursive: true });
    expect(deep.success && names(deep.entries)).toEqual(['a.txt', 'dir', 'dir-link', 'dir/b.txt', 'dir/sub', 'dir/sub/c.txt', 'empty', 'link-in']);
    const sub = await b.listArtifacts(s, './dir/../dir', { recursive: true });
    expect(sub.success && names(sub.entries)).toEqual(['dir/b.txt', 'dir/sub', 'dir/sub/c.txt']);
    const one = await b.listArtifacts(s, 'dir/b.txt');
    expect(one).toMatchObject({ success: true, truncated: false, entries: [{ path: 'dir/b.txt', isDir: false, size: 3 }] });
    expect(await b.listArtifacts(s, 'missing')).toMatchObject({ success: false, code: 'NOT_FOUND', retryable: false });
  });

  it("reads text and base64; sha256 is the whole file's, equal to sha256sum in the container", async () => {
    const { b, s } = await setup();
    await sh(b, s, "head -c 300000 /dev/urandom > bin.dat && printf 'caf\\303\\251 \\377 end' > t.txt && echo '{}' > d.json && : > x.PNG");
    const shaIn = (await sh(b, s, 'sha256sum bin.dat')).slice(0, 64);
    const whole = await b.readArtifact(s, 'bin.dat', { encoding: 'base64', includeSha256: true });
    expect(readArtifactResultSchema.parse(whole)).toEqual(whole);
    if (!whole.success) throw new Error(whole.error);
    const data = Buffer.from(whole.content, 'base64');
    expect(whole).toMatchObject({ encoding: 'base64', truncated: false, bytes: 300_000, fileSize: 300_000, path: 'bin.dat', mime: 'application/octet-stream', sha256: shaIn });
    expect(sha256(data)).toBe(shaIn);
    const part = await b.readArtifact(s, 'bin.dat', { encoding: 'base64', maxBytes: 1000, includeSha256: true });
    if (!part.success) throw new Error(part.error);
    expect(part).toMatchObject({ truncated: true, bytes: 1000, fileSize: 300_000, sha256: shaIn });
    expect(Buffer.from(part.content, 'base64').equals(data.subarray(0, 1000))).toBe(true);
    const text = await b.readArtifact(s, 'dir/../t.txt', { encoding: ' TEXT ' as 'text' });
    expect(text).toMatchObject({ success: true, content: 'café \uFFFD end', encoding: 'text', path: 't.txt', mime: 'text/plain', sha256: null });
    expect(await b.readArtifact(s, 'd.json')).toMatchObject({ success: true, mime: 'application/json', content: '{}\n' });
    expect(await b.readArtifact(s, 'x.PNG')).toMatchObject({ success: true, mime: 'image/png', bytes: 0, truncated: false });
    expect(await b.readArtifact(s, '.')).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    expect(await b.readArtifact(s, 'nope.txt')).toMatchObject({ success: false, code: 'NOT_FOUND' });
    expect(await b.readArtifact(s, 'bin.dat', { encoding: 'hex' as 'text' })).toMatchObject({ success: false, code: 'INVALID_ARGS' });
  });

  it('reads files up to 5 MB whole and truncates only what is left out (limits above the ceiling clamped)', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'head -c 5000001 /dev/urandom > big && head -c 5000000 big > five');
    const shaFive = (await sh(b, s, 'sha256sum five')).slice(0, 64);
    const shaBig = (await sh(b, s, 'sha256sum big')).slice(0, 64);
    const five = await b.readArtifact(s, 'five', { encoding: 'base64', includeSha256: true });
    if (!five.success) throw new Error(five.error);
    expect(five).toMatchObject({ truncated: false, bytes: 5_000_000, fileSize: 5_000_000, sha256: shaFive });
    expect(sha256(Buffer.from(five.content, 'base64'))).toBe(shaFive);
    const big = await b.readArtifact(s, 'big', { encoding: 'base64', includeSha256: true, maxBytes: 50_000_000 });
    if (!big.success) throw new Error(big.error);
    expect(big).toMatchObject({ truncated: true, bytes: 5_000_000, fileSize: 5_000_001, sha256: shaBig });
    expect(sha256(Buffer.from(big.content, 'base64'))).toBe(shaFive);
  });

  it('read maxBytes at fileSize - 1, fileSize and fileSize + 1', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'head -c 1000 /dev/zero | tr "\\0" q > q.txt');
    const at = async (maxBytes: number) => b.readArtifact(s, 'q.txt', { maxBytes });
    expect(await at(999)).toMatchObject({ success: true, truncated: true, bytes: 999, fileSize: 1000, content: 'q'.repeat(999) });
    expect(await at(1000)).toMatchObject({ success: true, truncated: false, bytes: 1000 });
    expect(await at(1001)).toMatchObject({ success: true, truncated: false, bytes: 1000 });
    for (const bad of [0, -1, 1.5, Number.NaN, '10']) {
      expect(await at(bad as number), String(bad)).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    }
    expect(await at(Infinity)).toMatchObject({ success: true, bytes: 1000 });
  });

  it('archives a directory: regular files only, names relative to path, contents intact', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'mkdir -p out/sub out/empty && echo alpha > out/a.txt && head -c 200000 /dev/urandom > out/sub/b.bin && ln out/a.txt out/hard && ln -s /etc/passwd out/pw && ln -s a.txt out/rel-link && mkfifo out/fifo');
    const r = await b.archiveArtifacts(s, 'out');
    expect(archiveArtifactsResultSchema.parse(r)).toEqual(r);
    expect(r).toMatchObject({ success: true, encoding: 'base64', format: 'tar.gz', entryCount: 3, truncated: false });
    // Hard-linked files come last (cpio carries their data with the group's last member), each group in order.
    const members = (await untar(r)).sort((x, y) => (x.name < y.name ? -1 : 1));
    expect(members.map((m) => [m.name, m.type])).toEqual([['a.txt', 'file'], ['hard', 'link'], ['sub/b.bin', 'file']]);
    expect(members[0]!.data.toString()).toBe('alpha\n');
    const bin = await b.readArtifact(s, 'out/sub/b.bin', { encoding: 'base64' });
    expect(bin.success && Buffer.from(bin.content, 'base64').equals(members[2]!.data)).toBe(true);
    const root = await untar(await b.archiveArtifacts(s, '.', { archiveFormat: 'tgz' }));
    expect(root.map((m) => m.name).sort()).toEqual(['out/a.txt', 'out/hard', 'out/sub/b.bin']);
    const single = await untar(await b.archiveArtifacts(s, 'out/sub/b.bin'));
    expect(single.map((m) => m.name)).toEqual(['b.bin']);
    const empty = await b.archiveArtifacts(s, 'out/empty');
    expect(empty).toMatchObject({ success: true, entryCount: 0, truncated: false });
    expect(await untar(empty)).toEqual([]);
    expect(await b.archiveArtifacts(s, 'out', { archiveFormat: 'zip' as 'tgz' })).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    expect(await b.archiveArtifacts(s, 'out/fifo')).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    expect(await b.archiveArtifacts(s, 'gone')).toMatchObject({ success: false, code: 'NOT_FOUND' });
  });

  it('archive maxBytes: TOO_LARGE with the size at size - 1, success at size and size + 1', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'mkdir -p d && head -c 50000 /dev/urandom > d/r1 && seq 1 20000 > d/n.txt');
    const full = await b.archiveArtifacts(s, 'd');
    if (!full.success) throw new Error(full.error);
    const size = full.bytes;
    expect(await b.archiveArtifacts(s, 'd', { maxBytes: size - 1 })).toEqual({ success: false, code: 'TOO_LARGE', retryable: false, bytes: size, error: `Archive too large: ${size} bytes (max ${size - 1})` });
    expect(await b.archiveArtifacts(s, 'd', { maxBytes: size })).toMatchObject({ success: true, bytes: size });
    expect(await b.archiveArtifacts(s, 'd', { maxBytes: size + 1 })).toMatchObject({ success: true, bytes: size });
    expect(await b.archiveArtifacts(s, 'd', { maxBytes: 0 })).toMatchObject({ success: false, code: 'INVALID_ARGS' });
  });

  it('an archive far past the limit is refused without being built whole', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'mkdir -p r && head -c 12000000 /dev/urandom > r/noise');
    const r = await b.archiveArtifacts(s, 'r', { maxBytes: 1000 });
    expect(r).toMatchObject({ success: false, code: 'TOO_LARGE' });
    expect(!r.success && r.error).toMatch(/more than \d+ bytes \(max 1000\)/);
  });

  it('truncated only when entries were left out: maxEntries at count - 1, count, count + 1', async () => {
    const { b, s } = await setup();
    await sh(b, s, 'mkdir t && cd t && for i in 1 2 3 4 5; do echo $i > f$i; done');
    for (const [maxEntries, n, truncated] of [[4, 4, true], [5, 5, false], [6, 5, false]] as const) {
      const list = await b.listArtifacts(s, 't', { maxEntries });
      expect(list, `list ${maxEntries}`).toMatchObject({ success: true, truncated });
      expect(list.success && names(list.entries)).toEqual(['t/f1', 't/f2', 't/f3', 't/f4', 't/f5'].slice(0, n));
      const arc = await b.archiveArtifacts(s, 't', { maxEntries });
      expect(arc, `archive ${maxEntries}`).toMatchObject({ success: true, truncated, entryCount: n });
      expect((await untar(arc)).map((m) => m.name)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5'].slice(0, n));
    }
  });

  it('at most 5 000 entries (larger maxEntries clamped), listed whole past the executor capture', async () => {
    const { b, s } = await setup();
    const long = 'n'.repeat(80);
    await sh(b, s, `mkdir many && cd many && seq -w 1 5001 | sed 's/$/-${long}/' | xargs touch`);
    const over = await b.listArtifacts(s, 'many', { maxEntries: 1_000_000_000 });
    if (!over.success) throw new Error(over.error);
    expect(over.entries).toHaveLength(5000);
    expect(over.truncated).toBe(true);
    expect(over.entries[4999]!.path).toBe(`many/5000-${long}`);
    await sh(b, s, `rm many/5001-${long}`);
    expect(await b.listArtifacts(s, 'many', { recursive: true })).toMatchObject({ success: true, truncated: false });
    const arc = await b.archiveArtifacts(s, 'many');
    expect(arc, arc.success ? '' : `${arc.code}: ${arc.error}`).toMatchObject({ success: true, entryCount: 5000, truncated: false });
  });

  it('runs artifact calls in the slot FIFO behind its tool calls', async () => {
    const { b, s } = await setup();
    const slow = b.executeBatch([[s, 'bash', { command: 'sleep 0.5; echo done > late.txt' }]]);
    const read = await b.readArtifact(s, 'late.txt');
    expect(read).toMatchObject({ success: true, content: 'done\n' });
    expect((await slow)[0]!.success).toBe(true);
  });

  it('throws only for programmer errors: not a Slot, backend not started', async () => {
    const { b, s } = await setup();
    await expect(b.readArtifact({ slotId: 'x' } as unknown as Slot, 'a')).rejects.toBeInstanceOf(InvalidArgsError);
    expect(await b.readArtifact(s, 42 as unknown as string)).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    expect(await b.listArtifacts(s, '.', { timeoutS: -1 })).toMatchObject({ success: true }); // timeouts are clamped to 1..3600 (contract §4)
    expect(await b.listArtifacts(s, '.', { timeoutS: Number.NaN })).toMatchObject({ success: false, code: 'INVALID_ARGS' });
    await b.stop();
    await expect(b.listArtifacts(s)).rejects.toBeInstanceOf(BackendStoppedError);
  });
});
