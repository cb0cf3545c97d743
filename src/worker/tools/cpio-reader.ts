import type { Readable } from 'node:stream';
import { InternalError } from '../../shared/errors.js';

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
/** The longest name a member can have: Linux's PATH_MAX, its NUL included. */
export const MAX_NAME_BYTES = 4096;
/** Only a regular file carries more than this (a symlink's body is its target, under PATH_MAX). */
const MAX_SPECIAL_BODY_BYTES = 4096;
const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const HEX_FIELDS = /^[0-9a-fA-F]{104}$/;

/** A stream that is not what busybox `cpio -o -H newc` writes: a typed INTERNAL error, never a crash or a huge read. */
export class CpioFormatError extends InternalError {
  constructor(detail: string) {
    super(`the archive stream from the container is malformed: ${detail}`);
  }
}

/**
 * Pulls exact byte counts out of a stream of chunks. Chunks are kept as they arrive and joined once per
 * read, so reading n bytes copies O(n) whatever the chunk sizes (never a growing buffer re-copied per chunk).
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.bytes < n) {
      const next = await this.it.next();
      if (next.done) throw new CpioFormatError(`the stream ended early (wanted ${n - this.bytes} more bytes)`);
      if (next.value.length === 0) continue;
      this.chunks.push(next.value);
      this.bytes += next.value.length;
    }
  }

  /** Takes up to n bytes from what is buffered (at least one chunk's worth when any). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.bytes -= n;
      return first.subarray(0, n);
    }
    this.chunks.shift();
    this.bytes -= first.length;
    return first;
  }

  async read(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    await this.fill(n);
    if (this.chunks[0]!.length >= n) return this.take(n);
    const parts: Buffer[] = [];
    for (let left = n; left > 0; ) {
      const part = this.take(left);
      parts.push(part);
      left -= part.length;
    }
    return Buffer.concat(parts, n);
  }

  /** n bytes as they arrive, without holding them all. */
  async *chunked(n: number): AsyncGenerator<Buffer> {
    for (let left = n; left > 0; ) {
      if (this.bytes === 0) await this.fill(1);
      const out = this.take(left);
      left -= out.length;
      yield out;
    }
  }
}

/** The header's 13 fields, checked: magic, hex digits only, a name that fits PATH_MAX. */
function parseHeader(h: Buffer): { fields: number[]; nameBytes: number } {
  const text = h.toString('latin1');
  if (!text.startsWith('070701') && !text.startsWith('070702')) throw new CpioFormatError('not a newc cpio header');
  if (!HEX_FIELDS.test(text.slice(6))) throw new CpioFormatError('a header field is not 8 hex digits');
  const fields = Array.from({ length: 13 }, (_, i) => parseInt(text.slice(6 + i * 8, 14 + i * 8), 16));
  const nameBytes = fields[11]!;
  if (nameBytes < 1 || nameBytes > MAX_NAME_BYTES) throw new CpioFormatError(`namesize ${nameBytes} is outside 1..${MAX_NAME_BYTES}`);
  return { fields, nameBytes };
}

/**
 * Reads a newc cpio stream member by member. Each member's body must be consumed (or it is skipped) before
 * the next member is read.
 */
export async function* readCpio(src: Readable): AsyncGenerator<{ entry: CpioEntry; body: () => AsyncGenerator<Buffer> }> {
  const r = new ByteReader(src[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  for (;;) {
    const { fields, nameBytes } = parseHeader(await r.read(HEADER_BYTES));
    const field = (i: number): number => fields[i]!;
    const rawName = await r.read(nameBytes);
    if (rawName[nameBytes - 1] !== 0) throw new CpioFormatError('a member name is not NUL-terminated');
    const name = rawName.subarray(0, nameBytes - 1).toString('utf8');
    await r.read(pad4(HEADER_BYTES + nameBytes));
    if (name === 'TRAILER!!!') return;
    const entry: CpioEntry = { name, ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtimeS: field(5), size: field(6) };
    if ((entry.mode & S_IFMT) !== S_IFREG && entry.size > MAX_SPECIAL_BODY_BYTES) throw new CpioFormatError(`a member that is not a regular file claims ${entry.size} bytes`);
    let consumed = false;
    const body = async function* (): AsyncGenerator<Buffer> {
      consumed = true;
      yield* r.chunked(entry.size);
    };
    yield { entry, body };
    if (!consumed) for await (const chunk of r.chunked(entry.size)) void chunk;
    await r.read(pad4(entry.size));
  }
}
