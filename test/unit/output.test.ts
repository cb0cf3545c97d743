import { describe, expect, it } from 'vitest';
import type { Capture } from '../../src/worker/executor/bounded-capture.js';
import { MAX_OUTPUT_CHARS, joinOutput, renderCapture, type RenderedOutput } from '../../src/worker/tools/output.js';

const whole = (data: Buffer | string): Capture => {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return { head: buf, tail: Buffer.alloc(0), totalBytes: buf.length };
};
const markerRe = /\n\.\.\. \[output truncated: (-?\d+) bytes omitted\] \.\.\.\n/;
const omittedIn = (text: string): number => Number(markerRe.exec(text)?.[1] ?? NaN);
const r = (text: string, truncated = false): RenderedOutput => ({ text, truncated, omittedBytes: 0 });

describe('renderCapture', () => {
  it('returns a capture under the cap unchanged', () => {
    expect(renderCapture(whole('hello\nworld\n'))).toEqual({ text: 'hello\nworld\n', truncated: false, omittedBytes: 0 });
    expect(renderCapture(whole(''))).toEqual({ text: '', truncated: false, omittedBytes: 0 });
  });

  it('returns a capture of exactly the cap unchanged', () => {
    const s = 'x'.repeat(MAX_OUTPUT_CHARS);
    expect(renderCapture(whole(s))).toEqual({ text: s, truncated: false, omittedBytes: 0 });
    expect(renderCapture(whole('abcdefghij'), 10)).toEqual({ text: 'abcdefghij', truncated: false, omittedBytes: 0 });
  });

  it('keeps head and tail of a whole capture over the cap, with the exact number of omitted bytes', () => {
    const out = renderCapture(whole('abcdefghijklmnopqrst'), 10);
    expect(out.truncated).toBe(true);
    expect(out.omittedBytes).toBe(10);
    expect(out.text).toBe('abcde\n... [output truncated: 10 bytes omitted] ...\npqrst');
  });

  it('counts omitted bytes, not characters, for multi-byte text', () => {
    const s = 'é'.repeat(20); // 40 bytes
    const out = renderCapture(whole(s), 10);
    expect(out.text.startsWith('ééééé\n')).toBe(true);
    expect(out.text.endsWith('\nééééé')).toBe(true);
    expect(out.omittedBytes).toBe(20);
    expect(omittedIn(out.text)).toBe(20);
  });

  it('caps at 50 000 characters by default', () => {
    const s = `${'h'.repeat(60_000)}${'t'.repeat(60_000)}`;
    const out = renderCapture(whole(s));
    expect(out.truncated).toBe(true);
    const [head, tail] = out.text.split(/\n\.\.\. \[output truncated: \d+ bytes omitted\] \.\.\.\n/);
    expect(head).toBe('h'.repeat(25_000));
    expect(tail).toBe('t'.repeat(25_000));
    expect(out.omittedBytes).toBe(120_000 - 50_000);
  });

  it('renders a head+tail capture from the supervisor with the bytes it never sent counted', () => {
    const c: Capture = { head: Buffer.from('0123'), tail: Buffer.from('wxyz'), totalBytes: 1000 };
    const out = renderCapture(c);
    expect(out).toEqual({ text: '0123\n... [output truncated: 992 bytes omitted] ...\nwxyz', truncated: true, omittedBytes: 992 });
  });

  it('cuts a head+tail capture further down to the cap', () => {
    const c: Capture = { head: Buffer.from('abcdefgh'), tail: Buffer.from('12345678'), totalBytes: 100 };
    const out = renderCapture(c, 4);
    expect(out.text).toBe('ab\n... [output truncated: 96 bytes omitted] ...\n78');
    expect(out.omittedBytes).toBe(96);
  });

  it('replaces invalid UTF-8 with U+FFFD', () => {
    const out = renderCapture(whole(Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0x63, 0xe2, 0x82])));
    expect(out.text).toBe('a\uFFFDb\uFFFD(c\uFFFD');
    expect(out.truncated).toBe(false);
  });

  it('replaces invalid UTF-8 in head and tail of a capped capture', () => {
    const c: Capture = { head: Buffer.from([0x61, 0xfe]), tail: Buffer.from([0xff, 0x7a]), totalBytes: 500 };
    const out = renderCapture(c);
    expect(out.text.startsWith('a\uFFFD\n...')).toBe(true);
    expect(out.text.endsWith('...\n\uFFFDz')).toBe(true);
    expect(out.truncated).toBe(true);
  });

  it('states the exact, non-negative number of omitted bytes for binary (invalid UTF-8) output over the cap', () => {
    // 20 raw bytes, none valid UTF-8: 5 shown at the head, 5 at the tail (each as one U+FFFD), so 10 left out.
    const out = renderCapture(whole(Buffer.alloc(20, 0xff)), 10);
    expect(out.truncated).toBe(true);
    expect(out.text).toBe(`${'\uFFFD'.repeat(5)}\n... [output truncated: 10 bytes omitted] ...\n${'\uFFFD'.repeat(5)}`);
    expect(out.omittedBytes).toBe(10);
  });

  it('states the exact number of omitted bytes for binary output the supervisor already cut to head and tail', () => {
    // 100 raw bytes; the supervisor sent 8 + 8; the render shows 2 + 2 of them (each as one U+FFFD), so 96 left out.
    const c: Capture = { head: Buffer.alloc(8, 0xff), tail: Buffer.alloc(8, 0xfe), totalBytes: 100 };
    const out = renderCapture(c, 4);
    expect(out.text).toBe('\uFFFD\uFFFD\n... [output truncated: 96 bytes omitted] ...\n\uFFFD\uFFFD');
    expect(out.omittedBytes).toBe(96);
  });
});

describe('joinOutput', () => {
  it('joins stdout and stderr with the [stderr] separator when both are non-empty', () => {
    expect(joinOutput(r('out\n'), r('err\n'))).toEqual({ output: 'out\n\n[stderr]\nerr\n', truncated: false });
    expect(joinOutput(r('out'), r('err'))).toEqual({ output: 'out\n[stderr]\nerr', truncated: false });
  });

  it('uses only the non-empty stream, with no separator', () => {
    expect(joinOutput(r('out\n'), r(''))).toEqual({ output: 'out\n', truncated: false });
    expect(joinOutput(r(''), r('err\n'))).toEqual({ output: 'err\n', truncated: false });
    expect(joinOutput(r(''), r(''))).toEqual({ output: '', truncated: false });
  });

  it('is truncated when either stream was', () => {
    expect(joinOutput(r('a', true), r('b')).truncated).toBe(true);
    expect(joinOutput(r('a'), r('b', true)).truncated).toBe(true);
    expect(joinOutput(r('', false), r('b', true))).toEqual({ output: 'b', truncated: true });
  });

  it('joins two rendered captures end to end', () => {
    const j = joinOutput(renderCapture(whole('x'.repeat(30)), 10), renderCapture(whole('err')));
    expect(j.output).toBe('xxxxx\n... [output truncated: 20 bytes omitted] ...\nxxxxx\n[stderr]\nerr');
    expect(j.truncated).toBe(true);
  });
});
