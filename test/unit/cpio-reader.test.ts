import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CpioFormatError, MAX_NAME_BYTES, readCpio } from '../../src/worker/tools/cpio-reader.js';
import { repackArchive } from '../../src/worker/tools/artifact-archive.js';

const hex = (n: number): string => n.toString(16).padStart(8, '0');
const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
/** One newc header (what busybox `cpio -o -H newc` writes), with fields overridable as raw text. */
function header(o: { nameBytes: number; size?: number; mode?: number; raw?: Partial<Record<number, string>> }): Buffer {
  const fields = [1, o.mode ?? 0o100644, 0, 0, 1, 1_700_000_000, o.size ?? 0, 0, 0, 0, 0, o.nameBytes, 0].map(hex);
  for (const [i, text] of Object.entries(o.raw ?? {})) fields[Number(i)] = text!;
  return Buffer.from(`070701${fields.join('')}`, 'latin1');
}
function member(name: string, body: Buffer | string = '', mode?: number): Buffer {
  const n = Buffer.from(`${name}\0`);
  const b = Buffer.from(body);
  const h = header({ nameBytes: n.length, size: b.length, ...(mode !== undefined ? { mode } : {}) });
  return Buffer.concat([h, n, pad(h.length + n.length), b, pad(b.length)]);
}
const cpio = (...members: Buffer[]): Buffer => Buffer.concat([...members, member('TRAILER!!!', '', 0)]);

async function readAll(src: Readable): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for await (const { entry, body } of readCpio(src)) {
    let n = 0;
    for await (const c of body()) n += c.length;
    out.push([entry.name, n]);
  }
  return out;
}
/** The header alone, then a stream that never ends: the reader must decide from the header. */
const openAfter = (...chunks: Buffer[]): Readable => {
  const s = new PassThrough();
  for (const c of chunks) s.write(c);
  return s;
};

afterEach(() => vi.restoreAllMocks());

describe('readCpio rejects absurd headers with a typed error, without reading on', () => {
  it.each([
    ['a huge namesize', header({ nameBytes: 0xffffffff }), /namesize 4294967295 is outside 1\.\.4096/],
    ['namesize one past PATH_MAX', header({ nameBytes: MAX_NAME_BYTES + 1 }), /namesize 4097/],
    ['namesize 0', header({ nameBytes: 0 }), /namesize 0/],
    ['a field that is not hex', header({ nameBytes: 2, raw: { 6: '0000zz00' } }), /not 8 hex digits/],
    ['a negative-looking field', header({ nameBytes: 2, raw: { 11: '-0000002' } }), /not 8 hex digits/],
    ['a wrong magic', Buffer.concat([Buffer.from('070707'), header({ nameBytes: 2 }).subarray(6)]), /not a newc cpio header/],
  ])('%s', async (_, h, message) => {
    const err = await readAll(openAfter(h)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CpioFormatError);
    expect(err).toMatchObject({ code: 'INTERNAL', name: 'CpioFormatError' });
    expect((err as Error).message).toMatch(message);
  });

  it('a name without its NUL, a special file claiming a body, a stream cut short', async () => {
    const noNul = Buffer.concat([header({ nameBytes: 4 }), Buffer.from('abcd')]);
    const fifo = member('./f', 'x'.repeat(5000), 0o010644);
    const cut = cpio(member('./a', 'hello')).subarray(0, 130);
    for (const [src, message] of [[noNul, /not NUL-terminated/], [fifo, /not a regular file claims 5000 bytes/], [cut, /ended early/]] as const) {
      const err = await readAll(Readable.from([src])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CpioFormatError);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('repackArchive turns it into the same typed error (a failed call, not a crashed worker)', async () => {
    const err = await repackArchive(openAfter(header({ nameBytes: 0x7fffffff })), { dir: true, maxBytes: 1000, maxEntries: 10, timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CpioFormatError);
  });
});

describe('readCpio reads in linear time', () => {
  it('a PATH_MAX name and a body arriving one byte at a time are copied about once, not once per chunk', async () => {
    const name = `./${'n'.repeat(MAX_NAME_BYTES - 3)}`;
    const stream = cpio(member(name, 'b'.repeat(20_000)), member('./small', 'ok'));
    const concat = vi.spyOn(Buffer, 'concat');
    const bytes = [...stream].map((b) => Buffer.from([b]));
    expect(await readAll(Readable.from(bytes))).toEqual([
      [name, 20_000],
      ['./small', 2],
    ]);
    const copied = concat.mock.results.reduce((n, r) => n + (r.value as Buffer).length, 0);
    // One copy per read: headers, names, padding. Growing a buffer per chunk would copy ~8 MB for the name alone.
    expect(copied).toBeLessThanOrEqual(2 * stream.length);
  });

  it('reads members split across chunks of any size', async () => {
    const stream = cpio(member('./a', 'alpha'), member('./b/c', 'x'.repeat(70_000)), member('./d', ''));
    for (const size of [1, 3, 109, 111, 4096, 65_536]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; at += size) chunks.push(stream.subarray(at, at + size));
      expect(await readAll(Readable.from(chunks))).toEqual([['./a', 5], ['./b/c', 70_000], ['./d', 0]]);
    }
  });
});
