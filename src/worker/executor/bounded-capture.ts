/** Bytes of each stream's head and tail the worker keeps; the middle is only counted. */
export const CAPTURE_HEAD_BYTES = 100_000;
export const CAPTURE_TAIL_BYTES = 100_000;

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

/** A capture of a stream sent as its whole, or as its first headCap and last tailCap bytes. */
export function captureOf(body: Buffer, totalBytes: number, headCap = CAPTURE_HEAD_BYTES, tailCap = CAPTURE_TAIL_BYTES): Capture {
  if (totalBytes <= headCap + tailCap) return { head: body, tail: Buffer.alloc(0), totalBytes };
  return { head: body.subarray(0, headCap), tail: body.subarray(headCap), totalBytes };
}
