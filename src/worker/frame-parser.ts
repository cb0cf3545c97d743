import { SUPERVISOR_HEAD_BYTES, SUPERVISOR_TAIL_BYTES } from './supervisor-script.js';

/** One stream's capture: the whole of it, or its head and tail plus the total size. */
export interface Capture {
  head: Buffer;
  tail: Buffer;
  totalBytes: number;
}

export type SupervisorEvent =
  | { type: 'ready'; pid: number }
  | { type: 'started'; id: string; pgid: number; dir: string }
  | { type: 'result'; id: string; exitCode: number; stdout: Capture; stderr: Capture };

const MAX_LINE_BYTES = 4096;
const bodyBytes = (total: number, headCap: number, tailCap: number): number => Math.min(total, headCap + tailCap);

/**
 * Parses the supervisor's reply stream (see supervisor-script.ts). Pure: feed chunks, get events.
 * Throws on anything that breaks the framing; the session is then restarted.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pending: { id: string; exitCode: number; os: number; es: number } | undefined;

  constructor(
    private readonly headCap = SUPERVISOR_HEAD_BYTES,
    private readonly tailCap = SUPERVISOR_TAIL_BYTES,
  ) {}

  push(chunk: Buffer): SupervisorEvent[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const events: SupervisorEvent[] = [];
    for (;;) {
      const ev = this.pending ? this.takeBody(this.pending) : this.takeLine();
      if (ev === undefined) return events;
      if (ev !== null) events.push(ev);
    }
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** undefined: need more bytes; null: consumed something that is not an event yet. */
  private takeLine(): SupervisorEvent | null | undefined {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    this.chunks = all.length ? [all] : [];
    const nl = all.indexOf(0x0a);
    if (nl < 0) {
      if (all.length > MAX_LINE_BYTES) throw new Error(`supervisor framing lost: ${JSON.stringify(all.subarray(0, 80).toString())}`);
      return undefined;
    }
    const line = this.take(nl + 1).subarray(0, nl).toString('latin1');
    const f = line.split(' ');
    const num = (i: number): number => {
      const n = Number(f[i]);
      if (!Number.isInteger(n)) throw new Error(`supervisor framing lost: ${JSON.stringify(line.slice(0, 80))}`);
      return n;
    };
    switch (f[0]) {
      case 'READY':
        return { type: 'ready', pid: num(1) };
      case 'P':
        return { type: 'started', id: f[1] ?? '', pgid: num(2), dir: f[3] ?? '' };
      case 'R':
        this.pending = { id: f[1] ?? '', exitCode: num(2), os: num(3), es: num(4) };
        return null;
      case undefined:
      default:
        throw new Error(`supervisor framing lost: ${JSON.stringify(line.slice(0, 80))}`);
    }
  }

  private takeBody(p: { id: string; exitCode: number; os: number; es: number }): SupervisorEvent | undefined {
    const ob = bodyBytes(p.os, this.headCap, this.tailCap);
    const eb = bodyBytes(p.es, this.headCap, this.tailCap);
    if (this.buffered < ob + eb) return undefined;
    this.pending = undefined;
    const body = Buffer.from(this.take(ob + eb));
    return { type: 'result', id: p.id, exitCode: p.exitCode, stdout: this.split(body.subarray(0, ob), p.os), stderr: this.split(body.subarray(ob), p.es) };
  }

  private split(body: Buffer, total: number): Capture {
    if (total <= this.headCap + this.tailCap) return { head: body, tail: Buffer.alloc(0), totalBytes: total };
    return { head: body.subarray(0, this.headCap), tail: body.subarray(this.headCap), totalBytes: total };
  }
}
