import { CAPTURE_HEAD_BYTES, CAPTURE_TAIL_BYTES } from './supervisor-script.js';

/** One stream's capture: the whole of it (tail empty), or its head and tail plus the total size. */
export interface Capture {
  head: Buffer;
  tail: Buffer;
  totalBytes: number;
}

/** Keeps the first headCap and last tailCap bytes of a stream and counts the rest: bounded memory. */
export class BoundedCapture {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  totalBytes = 0;

  constructor(
    private readonly headCap = CAPTURE_HEAD_BYTES,
    private readonly tailCap = CAPTURE_TAIL_BYTES,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.totalBytes += chunk.length;
    if (this.headBytes < this.headCap) {
      const take = Math.min(chunk.length, this.headCap - this.headBytes);
      this.head.push(Buffer.from(chunk.subarray(0, take)));
      this.headBytes += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    this.tail.push(Buffer.from(chunk));
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= this.tailCap) {
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  result(): Capture {
    const head = Buffer.concat(this.head, this.headBytes);
    let tail = Buffer.concat(this.tail, this.tailBytes);
    if (tail.length > this.tailCap) tail = tail.subarray(tail.length - this.tailCap);
    if (head.length + tail.length === this.totalBytes) return { head: Buffer.concat([head, tail]), tail: Buffer.alloc(0), totalBytes: this.totalBytes };
    return { head, tail, totalBytes: this.totalBytes };
  }
}

/**
 * Finds a marker in a byte stream fed in arbitrary chunks. Bytes before the marker are passed on as
 * soon as they cannot be the start of it; what follows the marker is returned to the caller.
 */
export class MarkerScanner {
  private carry: Buffer = Buffer.alloc(0);
  constructor(private readonly marker: Buffer) {}

  /** `data`: bytes before the marker (or safe so far); `rest`: bytes after it when `found`. */
  feed(chunk: Buffer): { data: Buffer; found: boolean; rest: Buffer } {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const at = buf.indexOf(this.marker);
    if (at >= 0) {
      this.carry = Buffer.alloc(0);
      return { data: buf.subarray(0, at), found: true, rest: buf.subarray(at + this.marker.length) };
    }
    const keep = Math.min(buf.length, this.marker.length - 1);
    this.carry = Buffer.from(buf.subarray(buf.length - keep));
    return { data: buf.subarray(0, buf.length - keep), found: false, rest: Buffer.alloc(0) };
  }

  /** Bytes held back because they might start the marker. */
  flush(): Buffer {
    const c = this.carry;
    this.carry = Buffer.alloc(0);
    return c;
  }
}

/** The end-of-call line that follows the nonce: "R <exitCode> <stderrBytes>". */
export function parseEndLine(line: string): { exitCode: number; stderrBytes: number } {
  const m = /^R (-?\d+) (\d+)$/.exec(line);
  if (!m) throw new Error(`executor end line is malformed: ${JSON.stringify(line.slice(0, 80))}`);
  return { exitCode: Number(m[1]), stderrBytes: Number(m[2]) };
}

/** A capture of a stream sent as its whole, or as its first headCap and last tailCap bytes. */
export function captureOf(body: Buffer, totalBytes: number, headCap = CAPTURE_HEAD_BYTES, tailCap = CAPTURE_TAIL_BYTES): Capture {
  if (totalBytes <= headCap + tailCap) return { head: body, tail: Buffer.alloc(0), totalBytes };
  return { head: body.subarray(0, headCap), tail: body.subarray(headCap), totalBytes };
}
