import { describe, expect, it } from 'vitest';
import { BoundedCapture, MarkerScanner, parseControl } from '../../src/worker/frame-parser.js';

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
    expect(s.flush().toString()).toBe('ef');
  });

  it('handles a marker at the very start and binary bytes around it', () => {
    const s = new MarkerScanner(b('MK'));
    const r = s.feed(Buffer.from([0x4d, 0x4b, 0x00, 0xff]));
    expect(r).toMatchObject({ found: true });
    expect([...r.data]).toEqual([]);
    expect([...r.rest]).toEqual([0x00, 0xff]);
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

describe('parseControl', () => {
  it('parses start and end lines', () => {
    expect(parseControl('P 42 /tmp/.slotq/7')).toEqual({ type: 'started', pgid: 42, dir: '/tmp/.slotq/7' });
    expect(parseControl('R 0')).toEqual({ type: 'ended', exitCode: 0 });
    expect(parseControl('R 137')).toEqual({ type: 'ended', exitCode: 137 });
  });

  it('throws on anything else', () => {
    for (const bad of ['', 'X 1', 'P abc /d', 'R', 'R 1.5', 'READY 5']) expect(() => parseControl(bad)).toThrow(/malformed/);
  });
});
