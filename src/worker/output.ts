import type { Capture } from './frame-parser.js';

export const MAX_OUTPUT_CHARS = 50_000;

export interface RenderedOutput {
  text: string;
  truncated: boolean;
  omittedBytes: number;
}

const decoder = new TextDecoder('utf-8', { fatal: false }); // invalid bytes become U+FFFD
const marker = (bytes: number): string => `\n... [output truncated: ${bytes} bytes omitted] ...\n`;

/**
 * Renders one captured stream as text of at most `maxChars` characters (plus a marker),
 * keeping the head and the tail.
 */
export function renderCapture(c: Capture, maxChars = MAX_OUTPUT_CHARS): RenderedOutput {
  const half = Math.floor(maxChars / 2);
  if (c.tail.length === 0 && c.head.length === c.totalBytes) {
    const text = decoder.decode(c.head);
    if (text.length <= maxChars) return { text, truncated: false, omittedBytes: 0 };
    const head = text.slice(0, half);
    const tail = text.slice(text.length - half);
    const omitted = c.totalBytes - Buffer.byteLength(head) - Buffer.byteLength(tail);
    return { text: head + marker(omitted) + tail, truncated: true, omittedBytes: omitted };
  }
  const head = decoder.decode(c.head).slice(0, half);
  const tailText = decoder.decode(c.tail);
  const tail = tailText.slice(Math.max(0, tailText.length - half));
  const omitted = Math.max(0, c.totalBytes - Buffer.byteLength(head) - Buffer.byteLength(tail));
  return { text: head + marker(omitted) + tail, truncated: true, omittedBytes: omitted };
}

/** Joins stdout and stderr as the contract says: `stdout + "\n[stderr]\n" + stderr` when both are non-empty. */
export function joinOutput(stdout: RenderedOutput, stderr: RenderedOutput): { output: string; truncated: boolean } {
  const output = stdout.text && stderr.text ? `${stdout.text}\n[stderr]\n${stderr.text}` : stdout.text || stderr.text;
  return { output, truncated: stdout.truncated || stderr.truncated };
}
