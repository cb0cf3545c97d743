import { describe, expect, it } from 'vitest';
import { FrameParser, type SupervisorEvent } from '../../src/worker/frame-parser.js';

const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));

/** Normalises events so Buffers compare as strings. */
const plain = (events: SupervisorEvent[]): unknown[] =>
  events.map((e) =>
    e.type === 'result'
      ? {
          ...e,
          stdout: { head: e.stdout.head.toString('latin1'), tail: e.stdout.tail.toString('latin1'), totalBytes: e.stdout.totalBytes },
          stderr: { head: e.stderr.head.toString('latin1'), tail: e.stderr.tail.toString('latin1'), totalBytes: e.stderr.totalBytes },
        }
      : e,
  );

const feed = (parser: FrameParser, data: Buffer, cuts: number[]): SupervisorEvent[] => {
  const events: SupervisorEvent[] = [];
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    events.push(...parser.push(data.subarray(at, cut)));
    at = cut;
  }
  return events;
};

/** A small deterministic PRNG so failures are reproducible. */
const rng = (seed: number) => (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};

// A stream carrying every kind of frame: ready, started, results with empty, small, binary and capped bodies.
const STREAM = Buffer.concat([
  b('READY 4242\n'),
  b('P 1 100 /tmp/.slotq/4242\n'),
  b('R 1 0 6 0\n'),
  b('hello\n'),
  b('P 2 101 /tmp/.slotq/4242\n'),
  b('R 2 3 0 0\n'),
  b('P 3 102 /tmp/.slotq/4242\n'),
  b('R 3 1 3 4\n'),
  b('out'),
  b('err\n'),
  b('P 4 103 /tmp/.slotq/4242\n'),
  b('R 4 0 4 0\n'),
  b([0x00, 0x0a, 0xff, 0x52]), // NUL, newline, invalid UTF-8, "R": bodies are counted, never scanned
  b('P 5 104 /tmp/.slotq/4242\n'),
  b('R 5 0 20 9\n'),
  b('0123'), // stdout head (HEAD=4)
  b('wxyz'), // stdout tail (TAIL=4), 12 bytes left out
  b('ABCD'), // stderr head
  b('FGHI'), // stderr tail, 1 byte left out
  b('P 6 105 /tmp/.slotq/4242\n'),
  b('R 6 0 8 0\n'),
  b('12345678'), // exactly HEAD+TAIL: sent whole
]);

const EXPECTED = [
  { type: 'ready', pid: 4242 },
  { type: 'started', id: '1', pgid: 100, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '1', exitCode: 0, stdout: { head: 'hello\n', tail: '', totalBytes: 6 }, stderr: { head: '', tail: '', totalBytes: 0 } },
  { type: 'started', id: '2', pgid: 101, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '2', exitCode: 3, stdout: { head: '', tail: '', totalBytes: 0 }, stderr: { head: '', tail: '', totalBytes: 0 } },
  { type: 'started', id: '3', pgid: 102, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '3', exitCode: 1, stdout: { head: 'out', tail: '', totalBytes: 3 }, stderr: { head: 'err\n', tail: '', totalBytes: 4 } },
  { type: 'started', id: '4', pgid: 103, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '4', exitCode: 0, stdout: { head: '\x00\n\xffR', tail: '', totalBytes: 4 }, stderr: { head: '', tail: '', totalBytes: 0 } },
  { type: 'started', id: '5', pgid: 104, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '5', exitCode: 0, stdout: { head: '0123', tail: 'wxyz', totalBytes: 20 }, stderr: { head: 'ABCD', tail: 'FGHI', totalBytes: 9 } },
  { type: 'started', id: '6', pgid: 105, dir: '/tmp/.slotq/4242' },
  { type: 'result', id: '6', exitCode: 0, stdout: { head: '12345678', tail: '', totalBytes: 8 }, stderr: { head: '', tail: '', totalBytes: 0 } },
];

describe('FrameParser', () => {
  it('parses READY, P and R lines with their bodies from one chunk', () => {
    expect(plain(new FrameParser(4, 4).push(STREAM))).toEqual(EXPECTED);
  });

  it('gives the same events fed byte by byte', () => {
    const p = new FrameParser(4, 4);
    const events: SupervisorEvent[] = [];
    for (let i = 0; i < STREAM.length; i++) events.push(...p.push(STREAM.subarray(i, i + 1)));
    expect(plain(events)).toEqual(EXPECTED);
  });

  it('gives the same events whatever the chunk boundaries', () => {
    const rand = rng(7);
    for (let round = 0; round < 200; round++) {
      const n = 1 + Math.floor(rand() * 12);
      const cuts = Array.from({ length: n }, () => Math.floor(rand() * STREAM.length)).sort((x, y) => x - y);
      expect(plain(feed(new FrameParser(4, 4), STREAM, cuts)), `cuts ${cuts.join(',')}`).toEqual(EXPECTED);
    }
  });

  it('emits nothing until a line or a body is complete, and empty chunks are harmless', () => {
    const p = new FrameParser(4, 4);
    expect(p.push(b('READ'))).toEqual([]);
    expect(p.push(b(''))).toEqual([]);
    expect(p.push(b('Y 9\nR 1 0 5 0\nabc'))).toEqual([{ type: 'ready', pid: 9 }]);
    expect(p.push(b('d'))).toEqual([]);
    expect(plain(p.push(b('eP 2 3 /d\n')))).toEqual([
      { type: 'result', id: '1', exitCode: 0, stdout: { head: 'abcde', tail: '', totalBytes: 5 }, stderr: { head: '', tail: '', totalBytes: 0 } },
      { type: 'started', id: '2', pgid: 3, dir: '/d' },
    ]);
  });

  it('splits a capped body into head and tail, per stream', () => {
    const p = new FrameParser(4, 4);
    const [r] = p.push(Buffer.concat([b('R 7 0 1000000 2\n'), b('headTAIL'), b('e!')]));
    expect(r).toMatchObject({ type: 'result', id: '7', exitCode: 0 });
    if (r?.type !== 'result') throw new Error('no result');
    expect(r.stdout.head.toString()).toBe('head');
    expect(r.stdout.tail.toString()).toBe('TAIL');
    expect(r.stdout.totalBytes).toBe(1_000_000);
    expect(r.stderr.head.toString()).toBe('e!');
    expect(r.stderr.tail.length).toBe(0);
    expect(r.stderr.totalBytes).toBe(2);
  });

  it('keeps the bytes after a body for the next frame', () => {
    const p = new FrameParser(4, 4);
    // 9 bytes: the head 0123 and the tail 5678 are sent, 1 byte is left out
    const events = p.push(b('R 1 0 9 0\n01235678READY 5\n'));
    expect(plain(events)).toEqual([
      { type: 'result', id: '1', exitCode: 0, stdout: { head: '0123', tail: '5678', totalBytes: 9 }, stderr: { head: '', tail: '', totalBytes: 0 } },
      { type: 'ready', pid: 5 },
    ]);
  });

  it('reports a negative exit code as is', () => {
    const [r] = new FrameParser(4, 4).push(b('R 1 -1 0 0\n'));
    expect(r).toMatchObject({ type: 'result', exitCode: -1 });
  });

  it.each([
    ['an unknown line', 'HELLO world\n'],
    ['a non-numeric pid', 'READY abc\n'],
    ['a non-numeric exit code', 'R 1 x 0 0\n'],
    ['a missing size', 'R 1 0 3\n'],
    ['a fractional size', 'R 1 0 1.5 0\n'],
    ['a non-numeric pgid', 'P 1 pg /d\n'],
    ['an empty line', '\n'],
  ])('throws on %s', (_what, line) => {
    expect(() => new FrameParser(4, 4).push(b(line))).toThrow(/framing lost/);
  });

  it('throws on a garbage line after good frames, split across chunks', () => {
    const p = new FrameParser(4, 4);
    expect(p.push(b('READY 1\nP 1 2 /d\nGARB'))).toHaveLength(2);
    expect(() => p.push(b('AGE\n'))).toThrow(/framing lost/);
  });

  it('throws when a line grows without a newline beyond any sane length', () => {
    const p = new FrameParser(4, 4);
    expect(() => {
      for (let i = 0; i < 100; i++) p.push(Buffer.alloc(100, 0x61));
    }).toThrow(/framing lost/);
  });

  it('uses the supervisor caps by default', () => {
    const total = 300_000;
    const body = Buffer.alloc(200_000, 0x61);
    const [r] = new FrameParser().push(Buffer.concat([b(`R 1 0 ${total} 0\n`), body]));
    if (r?.type !== 'result') throw new Error('no result');
    expect(r.stdout.head.length).toBe(100_000);
    expect(r.stdout.tail.length).toBe(100_000);
    expect(r.stdout.totalBytes).toBe(total);
  });
});
