import type { Readable } from 'node:stream';
import { InternalError } from '../shared/errors.js';

/** One member of a newc cpio stream (what busybox `cpio -o -H newc` writes). */
export interface CpioEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtimeS: number;
  size: number;
}

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;

const HEADER_BYTES = 110;
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

/** Pulls exact byte counts out of a stream of chunks. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const next = await this.it.next();
      if (next.done) throw new InternalError(`the archive stream ended early (wanted ${n} more bytes)`);
      this.buf = this.buf.length ? Buffer.concat([this.buf, next.value]) : next.value;
    }
  }

  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** n bytes as they arrive, without holding them all. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) await this.fill(1);
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      yield out;
    }
  }
}

/**
 * Reads a newc cpio stream member by member. Each member's body must be consumed (or it is skipped) before
 * the next member is read.
 */
export async function* readCpio(src: Readable): AsyncGenerator<{ entry: CpioEntry; body: () => AsyncGenerator<Buffer> }> {
  const r = new ByteReader(src[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  for (;;) {
    const h = (await r.read(HEADER_BYTES)).toString('latin1');
    if (!h.startsWith('070701') && !h.startsWith('070702')) throw new InternalError('the archive stream is not a newc cpio stream');
    const field = (i: number): number => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const nameBytes = field(11);
    const name = (await r.read(nameBytes)).subarray(0, nameBytes - 1).toString('utf8');
    await r.read(pad4(HEADER_BYTES + nameBytes));
    if (name === 'TRAILER!!!') return;
    const entry: CpioEntry = { name, ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtimeS: field(5), size: field(6) };
    let consumed = false;
    const body = async function* (): AsyncGenerator<Buffer> {
      consumed = true;
      yield* r.chunks(entry.size);
    };
    yield { entry, body };
    if (!consumed) for await (const chunk of r.chunks(entry.size)) void chunk;
    await r.read(pad4(entry.size));
  }
}
