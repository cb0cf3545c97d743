import type { Readable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { SWEREX_CLASS, SwerexWireError } from './swerex-wire.js';

/** One multipart/form-data body, whole: its text fields and its one file (RemoteRuntime.upload sends `file`). */
export interface FormData {
  fields: Record<string, string>;
  file: Buffer | undefined;
}

const bad = (msg: string): SwerexWireError => new SwerexWireError(SWEREX_CLASS.value, `upload: ${msg}`);

export function parseMultipart(body: Buffer, contentType: string | undefined): FormData {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw bad('send multipart/form-data with a boundary (fields file, target_path, unzip)');
  const delim = Buffer.from(`--${boundary}`);
  const out: FormData = { fields: {}, file: undefined };
  let at = body.indexOf(delim);
  while (at >= 0) {
    const start = at + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break; // the closing delimiter
    const headEnd = body.indexOf('\r\n\r\n', start);
    if (headEnd < 0) throw bad('a part has no header end');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headEnd + 4);
    if (next < 0) throw bad('the body has no closing boundary');
    const head = body.subarray(start, headEnd).toString('utf8');
    const data = body.subarray(headEnd + 4, next);
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (name === 'file' || /filename=/i.test(head)) out.file = data;
    else if (name !== undefined) out.fields[name] = data.toString('utf8');
    at = next + 2;
  }
  return out;
}

/** The entries of a zip (stored or deflated; no zip64, no encryption) read from its central directory. */
interface ZipEntry {
  name: string;
  mode: number;
  data: Buffer;
}

function zipEntries(zip: Buffer): ZipEntry[] {
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65_557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('unzip is true but the file is not a zip archive');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw bad('a broken zip central directory');
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const external = zip.readUInt32LE(p + 38);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.subarray(p + 46, p + 46 + nameLen).toString('utf8');
    p += 46 + nameLen + extraLen + commentLen;
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataAt, dataAt + compressed);
    if (method !== 0 && method !== 8) throw bad(`zip entry ${name}: compression method ${method} is not supported (stored or deflate only)`);
    if (name.split('/').includes('..') || name.startsWith('/')) throw bad(`zip entry ${name} points outside the target`);
    entries.push({ name, mode: (external >>> 16) & 0o7777, data: method === 8 ? inflateRawSync(raw) : Buffer.from(raw) });
  }
  return entries;
}

/** A zip as a tar stream (what SlotBackend.upload unpacks), modes kept when the zip has them. */
export function zipToTar(zip: Buffer): Readable {
  const entries = zipEntries(zip);
  const tar = pack();
  for (const e of entries) {
    const isDir = e.name.endsWith('/');
    if (isDir) tar.entry({ name: e.name, type: 'directory', mode: e.mode || 0o755 });
    else tar.entry({ name: e.name, type: 'file', mode: e.mode || 0o644, size: e.data.length }, e.data);
  }
  tar.finalize();
  return tar as unknown as Readable;
}
