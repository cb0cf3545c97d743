import { describe, expect, it } from 'vitest';
import { BoundedCapture, captureOf } from '../../src/worker/executor/bounded-capture.js';
import { BODY_MIN_BYTES, MarkerScanner, encodeRequest, parseEndLine } from '../../src/worker/executor/executor-protocol.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Feeds data to a scanner in the given chunk sizes; returns the bytes before the marker and after it. */
function scanInChunks(marker: string, data: string, size: number): { before: string; after: string; found: boolean } {
  const s = new MarkerScanner(b(marker));
  let before = '';
  let after = '';
  let found = false;
  for (let i = 0; i < data.length; i += size) {
    const chunk = b(data.slice(i, i + size));
    if (found) {
      after += chunk.toString('latin1');
      continue;
    }
    const r = s.feed(chunk);
    before += r.data.toString('latin1');
    if (r.found) {
      found = true;
      after += r.rest.toString('latin1');
    }
  }
  return { before, after, found };
}

describe('MarkerScanner', () => {
  it('finds the marker whatever the chunk boundaries', () => {
    const data = 'hello @sq@ world@sqNONCE@tail';
    for (let size = 1; size <= data.length; size++) {
      expect(scanInChunks('@sqNONCE@', data, size)).toEqual({ before: 'hello @sq@ world', after: 'tail', found: true });
    }
  });

  it('passes on bytes that cannot start the marker and holds back at most marker-1 bytes', () => {
    const s = new MarkerScanner(b('XYZ'));
    const r = s.feed(b('abcdef'));
    expect(r.found).toBe(false);
    expect(r.data.toString()).toBe('abcd');
    expect(s.feed(b('g')).data.toString()).toBe('e'); // 'ef' was held back; now 'fg' is
  });

  it('handles a marker at the very start and binary bytes around it', () => {
    const s = new MarkerScanner(b('MK'));
    const r = s.feed(Buffer.from([0x4d, 0x4b, 0x00, 0xff]));
    expect(r).toMatchObject({ found: true });
    expect([...r.data]).toEqual([]);
    expect([...r.rest]).toEqual([0x00, 0xff]);
  });
});

describe('MarkerScanner, more', () => {
  /** A small deterministic PRNG so failures are reproducible. */
  const rng = (seed: number) => (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };

  it('finds a self-overlapping marker after a partial match', () => {
    for (let size = 1; size <= 6; size++) {
      expect(scanInChunks('aab', 'xaaaabyz', size)).toEqual({ before: 'xaa', after: 'yz', found: true });
    }
  });

  it('finds the marker at random chunk boundaries in binary data, never passing on any of its bytes', () => {
    const rand = rng(11);
    const marker = Buffer.from('@sq0123456789abcdef@');
    for (let round = 0; round < 200; round++) {
      const before = Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
      const after = Buffer.from(Array.from({ length: Math.floor(rand() * 50) }, () => Math.floor(rand() * 256)));
      const data = Buffer.concat([before, marker, after]);
      const s = new MarkerScanner(marker);
      const got: Buffer[] = [];
      let rest: Buffer[] = [];
      let found = false;
      for (let i = 0; i < data.length; ) {
        const n = 1 + Math.floor(rand() * 40);
        const chunk = data.subarray(i, i + n);
        i += n;
        if (found) {
          rest.push(chunk);
          continue;
        }
        const r = s.feed(chunk);
        got.push(r.data);
        if (r.found) {
          found = true;
          rest = [r.rest];
        }
      }
      expect(found, `round ${round}`).toBe(true);
      expect(Buffer.concat(got).equals(before), `round ${round}`).toBe(true);
      expect(Buffer.concat(rest).equals(after), `round ${round}`).toBe(true);
    }
  });

  it('passes on every byte before the marker, however it is cut', () => {
    const s = new MarkerScanner(b('@END@'));
    const parts = ['abc@', 'EN', 'x@E', 'ND!', '@@EN'];
    let out = '';
    for (const p of parts) {
      const r = s.feed(b(p));
      expect(r.found).toBe(false);
      out += r.data.toString('latin1');
    }
    const end = s.feed(b('@END@'));
    expect(end.found).toBe(true);
    expect(out + end.data.toString('latin1')).toBe(parts.join(''));
  });

  it('can be used again for the next marker after a match', () => {
    const s = new MarkerScanner(b('MK'));
    expect(s.feed(b('one M')).data.toString()).toBe('one ');
    const r1 = s.feed(b('K'));
    expect(r1).toMatchObject({ found: true });
    expect(r1.data.toString()).toBe('');
    const r2 = s.feed(b('twoMKthree'));
    expect(r2.found).toBe(true);
    expect(r2.data.toString()).toBe('two');
    expect(r2.rest.toString()).toBe('three');
  });
});

describe('BoundedCapture', () => {
  it('returns a small stream whole', () => {
    const c = new BoundedCapture(4, 4);
    c.push(b('abc'));
    c.push(b('de'));
    expect(c.result()).toEqual({ head: b('abcde'), tail: Buffer.alloc(0), totalBytes: 5 });
  });

  it('returns a stream of exactly head+tail bytes whole', () => {
    const c = new BoundedCapture(4, 4);
    c.push(b('01234567'));
    expect(c.result()).toEqual({ head: b('01234567'), tail: Buffer.alloc(0), totalBytes: 8 });
  });

  it('keeps head and tail of a long stream fed in odd chunks, and counts every byte', () => {
    const c = new BoundedCapture(4, 4);
    const data = 'abcdefghijklmnopqrstuvwxyz';
    for (let i = 0; i < data.length; i += 3) c.push(b(data.slice(i, i + 3)));
    expect(c.result()).toEqual({ head: b('abcd'), tail: b('wxyz'), totalBytes: 26 });
  });

  it('gives the same result whatever the chunking, around the caps', () => {
    for (let len = 0; len <= 20; len++) {
      const data = b('abcdefghijklmnopqrstuvwxyz'.slice(0, len));
      const one = new BoundedCapture(4, 4);
      one.push(data);
      const bytewise = new BoundedCapture(4, 4);
      for (let i = 0; i < data.length; i++) bytewise.push(data.subarray(i, i + 1));
      const uneven = new BoundedCapture(4, 4);
      for (let i = 0, n = 1; i < data.length; i += n, n = (n % 5) + 1) uneven.push(data.subarray(i, i + n));
      const expected =
        len <= 8
          ? { head: data, tail: Buffer.alloc(0), totalBytes: len }
          : { head: data.subarray(0, 4), tail: data.subarray(len - 4), totalBytes: len };
      expect(one.result(), `len ${len}`).toEqual(expected);
      expect(bytewise.result(), `len ${len} byte by byte`).toEqual(expected);
      expect(uneven.result(), `len ${len} uneven`).toEqual(expected);
    }
  });

  it('keeps head and tail of one chunk much larger than both caps', () => {
    const c = new BoundedCapture(4, 4);
    c.push(b('ab'));
    c.push(b('cdefghijklmnopqrstuvwxyz'));
    c.push(Buffer.alloc(0));
    expect(c.result()).toEqual({ head: b('abcd'), tail: b('wxyz'), totalBytes: 26 });
  });

  it('returns nothing for an empty stream', () => {
    expect(new BoundedCapture(4, 4).result()).toEqual({ head: Buffer.alloc(0), tail: Buffer.alloc(0), totalBytes: 0 });
  });

  it('stays bounded in memory for a huge stream', () => {
    const c = new BoundedCapture(1000, 1000);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 2000; i++) c.push(chunk); // 128 MiB
    const r = c.result();
    expect(r.head.length).toBe(1000);
    expect(r.tail.length).toBe(1000);
    expect(r.totalBytes).toBe(2000 * 64 * 1024);
  });
});

describe('parseEndLine and captureOf', () => {
  it('parses the end line', () => {
    expect(parseEndLine('R 0 0')).toEqual({ exitCode: 0, stderrBytes: 0, flags: {} });
    expect(parseEndLine('R 137 12')).toEqual({ exitCode: 137, stderrBytes: 12, flags: {} });
    expect(parseEndLine('R -1 5')).toEqual({ exitCode: -1, stderrBytes: 5, flags: {} });
  });

  it('parses what the supervisor saw happen in the slot', () => {
    expect(parseEndLine('R 137 0 exit oom=2')).toEqual({ exitCode: 137, stderrBytes: 0, flags: { shellExited: true, oomKills: 2 } });
    expect(parseEndLine('R 2 9 pids=41')).toEqual({ exitCode: 2, stderrBytes: 9, flags: { pidsRefused: 41 } });
  });

  it('throws on anything else', () => {
    for (const bad of ['', 'X 1 0', 'R', 'R 1', 'R 1.5 0', 'R 1 x', 'READY 5', 'R 1 2 3']) expect(() => parseEndLine(bad)).toThrow(/malformed/);
  });

  it('splits a capped stderr body into head and tail', () => {
    expect(captureOf(Buffer.from('abc'), 3, 4, 4)).toEqual({ head: Buffer.from('abc'), tail: Buffer.alloc(0), totalBytes: 3 });
    const c = captureOf(Buffer.from('headTAIL'), 1000, 4, 4);
    expect([c.head.toString(), c.tail.toString(), c.totalBytes]).toEqual(['head', 'TAIL', 1000]);
  });
});

describe('encodeRequest', () => {
  it('sends a short command quoted on one line, and a long op s or i command as raw bytes after a length', () => {
    expect(encodeRequest('s', 7, '@n@', 'echo hi', Buffer.from('in'))).toEqual(Buffer.from("s 7 @n@ 2\n$'echo hi'\nin"));
    const long = `echo ${'é'.repeat(BODY_MIN_BYTES)}`;
    const bytes = Buffer.byteLength(long);
    expect(encodeRequest('i', 8, '@n@', long, Buffer.alloc(0))).toEqual(Buffer.from(`i 8 @n@ 0 ${bytes}\n${long}`));
    // The persistent shell's statement always travels quoted (it is written into that shell's input).
    expect(String(encodeRequest('t', 9, '@n@', long, Buffer.alloc(0)))).toMatch(/^t 9 @n@ 0\n\$'eval /);
  });
});
