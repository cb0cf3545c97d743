import type { Capture } from '../executor/bounded-capture.js';

export const MAX_OUTPUT_CHARS = 50_000;

export interface RenderedOutput {
  text: string;
  truncated: boolean;
  omittedBytes: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false }); // invalid bytes become U+FFFD
const decode = (b: Buffer): string => decoder.decode(b);
const marker = (bytes: number): string => `\n... [output truncated: ${bytes} bytes omitted] ...\n`;

/**
 * The most bytes from one end of buf that decode to at most maxChars characters.
 * Every byte decodes to at most one UTF-16 unit, except 4-byte sequences (two units for four bytes),
 * so the answer lies in [min(len, maxChars), min(len, 4 * maxChars)]: binary search it.
 */
function fitBytes(buf: Buffer, maxChars: number, fromEnd: boolean): number {
  const slice = (n: number): Buffer => (fromEnd ? buf.subarray(buf.length - n) : buf.subarray(0, n));
  let lo = Math.min(buf.length, maxChars);
  let hi = Math.min(buf.length, 4 * maxChars);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (decode(slice(mid)).length <= maxChars) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Renders one captured stream as text of at most `maxChars` characters (plus a marker),
 * keeping the head and the tail. The marker states exactly how many raw bytes were left out.
 */
export function renderCapture(c: Capture, maxChars = MAX_OUTPUT_CHARS): RenderedOutput {
  const whole = c.tail.length === 0 && c.head.length === c.totalBytes;
  if (whole) {
    const text = decode(c.head);
    if (text.length <= maxChars) return { text, truncated: false, omittedBytes: 0 };
  }
  const half = Math.floor(maxChars / 2);
  const headSrc = c.head;
  const tailSrc = whole ? c.head : c.tail;
  const headBytes = fitBytes(headSrc, half, false);
  const tailBytes = Math.min(fitBytes(tailSrc, half, true), whole ? c.totalBytes - headBytes : tailSrc.length);
  const omitted = c.totalBytes - headBytes - tailBytes;
  const text = decode(headSrc.subarray(0, headBytes)) + marker(omitted) + decode(tailSrc.subarray(tailSrc.length - tailBytes));
  return { text, truncated: true, omittedBytes: omitted };
}

/** Joins stdout and stderr as the contract says: `stdout + "\n[stderr]\n" + stderr` when both are non-empty. */
export function joinOutput(stdout: RenderedOutput, stderr: RenderedOutput): { output: string; truncated: boolean } {
  const output = stdout.text && stderr.text ? `${stdout.text}\n[stderr]\n${stderr.text}` : stdout.text || stderr.text;
  return { output, truncated: stdout.truncated || stderr.truncated };
}
