import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { AttachedProcess, ContainerExec } from './exec-port.js';
import { BoundedCapture, CAPTURE_HEAD_BYTES, CAPTURE_TAIL_BYTES, captureOf, type Capture } from './bounded-capture.js';
import { MAX_END_LINE_BYTES, MarkerScanner, encodeRequest, killArgv, killLine, newNonce, parseEndLine, parseReady, supervisorArgv, type EndFlags, type Op, type SessionShells } from './executor-protocol.js';
import { FIFO_HANDSHAKE_MS, FifoHandshake, channelGivenUp, killPidArgv, noteChannelResult, type ChannelDir, type FifoChannel } from './fifo-channel.js';
import { withDeadline } from '../../shared/deadline.js';
import { InternalError, SlotqError, toError } from '../../shared/errors.js';

export interface RunRequest {
  /** s: a user command in a fresh image sh; i: slotq's own script in the helper's sh; t: the slot's persistent shell. */
  mode: Op;
  command: string;
  stdin?: Buffer;
  timeoutMs: number;
  /** Run as this user (Docker's User form) instead of the slot's: the slot runs it over a one-shot exec. */
  user?: string;
  /** Keep this many bytes of stdout whole (a transfer chunk) instead of the usual head and tail. */
  stdoutCap?: number;
}

export interface RunResult {
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
  stdout: Capture;
  stderr: Capture;
  /** What the supervisor saw happen in the slot during a failed call (absent on the fallback path). */
  flags?: EndFlags;
}

/** The executor session died (or broke its protocol) during a call. */
export class SessionDiedError extends SlotqError {
  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, { cause, retryable: true });
  }
}

interface Pending {
  id: number;
  req: RunRequest;
  t0: number;
  timedOut: boolean;
  timer: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  fallbackTimer?: NodeJS.Timeout;
  out: BoundedCapture;
  scan: MarkerScanner;
  /** After the nonce: the end line, then the stderr body. */
  tail?: { buf: Buffer; end?: ReturnType<typeof parseEndLine> };
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const KILL_ANSWER_MS = 5000;
/** How long the launcher gets to answer an in-band kill before the out-of-band one. */
const IN_BAND_KILL_MS = 1500;
const KILL_ATTEMPTS = 12;
const READY_TIMEOUT_MS = 15_000;

/**
 * One persistent supervisor process in a slot's container, fed calls over an attached exec stream.
 * One call at a time (the slot serialises them). A timeout kills the call's process group out of band.
 */
export class SupervisorSession {
  private pending: Pending | undefined;
  private seq = 0;
  private deadReason: string | undefined;
  private idle = '';
  private diagnostics = '';
  private dir = '';
  private onReady: (() => void) | undefined;
  private onStartFailure: ((reason: string) => void) | undefined;
  /** Where requests go: the stream's stdin, or the FIFO channel once it is up (fifo-channel.ts). */
  private input: Writable;
  private channel: FifoChannel | undefined;
  /** The supervisor's pid (READY), for killing one stuck in a failed channel handshake. */
  private pid = 0;
  private onAnnounce: ((fifo: boolean) => void) | undefined;
  /** Called when the session ends by itself while no call runs (its container died, say); not on close(). */
  onIdleEnd: (() => void) | undefined;

  private constructor(
    private readonly driver: ContainerExec,
    private readonly containerId: string,
    private readonly proc: AttachedProcess,
    private readonly log: Logger,
  ) {
    this.input = proc.stdin;
    proc.stdout.on('data', (chunk: Buffer) => this.guard(() => this.onStdout(chunk)));
    proc.stderr.on('data', (chunk: Buffer) => (this.diagnostics = (this.diagnostics + chunk.toString()).slice(-1000)));
    proc.stdout.on('end', () => this.die('executor session ended'));
    proc.stdout.on('error', (err: Error) => this.die(`executor stream failed: ${err.message}`));
  }

  /**
   * Starts a supervisor in the container and waits until it says READY; then moves its calls to the FIFO
   * channel when the driver gives the container one, else (or when that fails) keeps the stream.
   */
  static async open(driver: ContainerExec, containerId: string, shells: SessionShells, log: Logger): Promise<SupervisorSession> {
    const session = await SupervisorSession.start(driver, containerId, shells, log);
    const ch = driver.channelDir?.(containerId);
    if (!ch || channelGivenUp(ch.path)) return session;
    try {
      noteChannelResult(ch.path, await session.useFifos(ch));
      return session;
    } catch (err) {
      // A supervisor stuck in the handshake is killed; the next one stays on the stream. Only this session
      // (and this container, after CHANNEL_MAX_FAILURES in a row) gives up the channel: other slots keep theirs.
      noteChannelResult(ch.path, false);
      log.warn({ err: toError(err).message, containerId }, "this session's FIFO channel failed; its calls use the attached stream");
      session.close();
      if (session.pid) void driver.exec(containerId, killPidArgv(session.pid), { timeoutMs: KILL_ANSWER_MS }).catch(() => undefined);
      return SupervisorSession.start(driver, containerId, shells, log);
    }
  }

  private static async start(driver: ContainerExec, containerId: string, shells: SessionShells, log: Logger): Promise<SupervisorSession> {
    const attaching = driver.attach(containerId, supervisorArgv(shells));
    const proc = await withDeadline(attaching, READY_TIMEOUT_MS, () => {
      attaching.then((late) => late.close(), () => undefined); // an attach that arrives after the deadline
      return new InternalError(`attaching to the container took longer than ${READY_TIMEOUT_MS} ms (is dockerd overloaded?)`);
    });
    const opened = new SupervisorSession(driver, containerId, proc, log);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new InternalError(`executor session did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      opened.onReady = () => (clearTimeout(timer), resolve());
      opened.onStartFailure = (reason) => (clearTimeout(timer), reject(new InternalError(`executor session failed to start: ${reason}`)));
    }).catch((err: unknown) => {
      proc.close();
      throw err;
    });
    opened.onStartFailure = undefined;
    return opened;
  }

  /**
   * The handshake of fifo-channel.ts, with FIFOs the worker makes for it: true once calls use them; false with
   * the session still on the stream (no FIFOs could be made, or the supervisor cannot open them: NOFIFO).
   */
  private async useFifos(dir: ChannelDir): Promise<boolean> {
    const handshake = await FifoHandshake.prepare(dir).catch((err: unknown) => void this.log.warn({ err: toError(err).message }, "cannot make this session's FIFOs; its calls use the attached stream"));
    if (!handshake) return false;
    try {
      const announced = new Promise<boolean>((resolve) => (this.onAnnounce = resolve));
      this.proc.stdin.write(handshake.request);
      const fifo = await withDeadline(announced, FIFO_HANDSHAKE_MS, () => new InternalError(`the supervisor did not answer the FIFO request within ${FIFO_HANDSHAKE_MS} ms`));
      if (!fifo) return (this.log.debug("the supervisor cannot open this session's FIFOs; its calls use the attached stream"), false);
      const ch = await handshake.connect(FIFO_HANDSHAKE_MS);
      if (this.deadReason !== undefined) return (ch.close(), false);
      this.channel = ch;
      this.input = ch.input;
      ch.output.on('data', (chunk: Buffer) => this.guard(() => this.onStdout(chunk)));
      ch.output.on('end', () => this.die('executor channel ended'));
      ch.output.on('error', (err: Error) => this.die(`executor channel failed: ${err.message}`));
      ch.output.resume();
      return true;
    } finally {
      this.onAnnounce = undefined;
      await handshake.discard();
    }
  }

  /** Whether calls travel over the FIFO channel (else over the attached stream). */
  get onFifos(): boolean {
    return this.channel !== undefined;
  }

  get alive(): boolean {
    return this.deadReason === undefined;
  }

  run(req: RunRequest): Promise<RunResult> {
    if (this.deadReason !== undefined) return Promise.reject(new SessionDiedError(`executor session is dead: ${this.deadReason}`));
    if (this.pending) return Promise.reject(new InternalError('SupervisorSession.run called while a call is in flight'));
    const id = ++this.seq;
    const nonce = newNonce();
    const stdin = req.stdin ?? Buffer.alloc(0);
    return new Promise<RunResult>((resolve, reject) => {
      const p: Pending = {
        id,
        req,
        t0: performance.now(),
        timedOut: false,
        timer: setTimeout(() => this.onTimeout(p), req.timeoutMs),
        out: req.stdoutCap === undefined ? new BoundedCapture() : new BoundedCapture(req.stdoutCap, 0),
        scan: new MarkerScanner(Buffer.from(nonce)),
        resolve,
        reject,
      };
      this.pending = p;
      this.input.write(encodeRequest(req.mode, id, nonce, req.command, stdin));
    });
  }

  close(): void {
    this.die('closed');
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.die(toError(err).message);
    }
  }

  private onStdout(chunk: Buffer): void {
    const p = this.pending;
    if (!p) return this.onIdle(chunk);
    if (p.tail) return this.onTail(p, Buffer.concat([p.tail.buf, chunk]));
    const r = p.scan.feed(chunk);
    p.out.push(r.data);
    if (r.found) this.onTail(p, r.rest);
  }

  /** Bytes after the nonce: "R <exitCode> <stderrBytes>\n" then the stderr body. */
  private onTail(p: Pending, buf: Buffer): void {
    p.tail = { buf, ...(p.tail?.end ? { end: p.tail.end } : {}) };
    if (!p.tail.end) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_END_LINE_BYTES) throw new InternalError('executor end line too long');
        return;
      }
      p.tail = { buf: buf.subarray(nl + 1), end: parseEndLine(buf.subarray(0, nl).toString('latin1')) };
    }
    const { end } = p.tail;
    const bodyBytes = Math.min(end!.stderrBytes, CAPTURE_HEAD_BYTES + CAPTURE_TAIL_BYTES);
    if (p.tail.buf.length < bodyBytes) return;
    this.finish(p);
    p.resolve({
      exitCode: p.timedOut ? -1 : end!.exitCode,
      timedOut: p.timedOut,
      durationMs: Math.round(performance.now() - p.t0),
      stdout: p.out.result(),
      stderr: captureOf(Buffer.from(p.tail.buf.subarray(0, bodyBytes)), end!.stderrBytes),
      flags: end!.flags,
    });
  }

  /** Between calls only READY is expected; anything else is output of an escaped background process. */
  private onIdle(chunk: Buffer): void {
    this.idle = (this.idle + chunk.toString('latin1')).slice(-2000);
    if (this.onAnnounce) {
      const m = /(NO)?FIFO\n/.exec(this.idle);
      if (m) {
        const announce = this.onAnnounce;
        this.idle = '';
        this.onAnnounce = undefined;
        announce(m[1] === undefined);
      }
    }
    const ready = parseReady(this.idle);
    if (ready && this.onReady) {
      this.dir = ready.dir;
      this.pid = ready.pid;
      this.idle = '';
      this.onReady();
      this.onReady = undefined;
    }
  }

  /**
   * In band first: "k <id>" on the call's own input, which the launcher acts on with no new process in the
   * slot (a fork bomb may hold every pid: an exec would fail, and the call's stderr would be lost with the
   * session). Out of band (an exec) only when that goes unanswered: no launcher, or a wedged one.
   */
  private onTimeout(p: Pending): void {
    p.timedOut = true;
    this.killInBand(p);
    p.killTimer = setTimeout(() => this.die(`the call did not stop within ${IN_BAND_KILL_MS + KILL_ANSWER_MS} ms of being killed`), IN_BAND_KILL_MS + KILL_ANSWER_MS);
  }

  /** Kills the call in flight like a timeout does (in band, then out of band) without making it one; false when none runs. */
  killCurrent(): boolean {
    const p = this.pending;
    if (!p || this.deadReason !== undefined) return false;
    this.killInBand(p);
    return true;
  }

  /** "k <id>" on the call's input; the out-of-band kill once, if the call is still there IN_BAND_KILL_MS later. */
  private killInBand(p: Pending): void {
    this.input.write(killLine(p.id));
    p.fallbackTimer ??= setTimeout(() => this.pending === p && this.kill(p), IN_BAND_KILL_MS);
  }

  /**
   * Kills the call's whole process group; for a stateful call also unblocks the supervisor. The script
   * forks nothing (a fork bomb may hold every pid), and the exec is retried until the call ends: a
   * process that dies frees a pid for it.
   */
  private kill(p: Pending, attempt = 1): void {
    // Only if the pid file still names this call: a kill that arrives late must not hit the next one.
    this.driver.exec(this.containerId, killArgv(this.dir, p.id, p.req.mode === 't'), { timeoutMs: KILL_ANSWER_MS }).catch((err: unknown) => {
      if (this.pending !== p || attempt >= KILL_ATTEMPTS) return this.log.warn({ err: toError(err).message, attempt }, 'killing a timed-out call failed');
      setTimeout(() => this.pending === p && this.kill(p, attempt + 1), 250).unref();
    });
  }

  private finish(p: Pending): void {
    clearTimeout(p.timer);
    if (p.killTimer) clearTimeout(p.killTimer);
    if (p.fallbackTimer) clearTimeout(p.fallbackTimer);
    this.pending = undefined;
  }

  private die(reason: string): void {
    if (this.deadReason !== undefined) return;
    const detail = (this.diagnostics || this.idle).trim().slice(-300);
    this.deadReason = detail ? `${reason} (${detail})` : reason;
    this.onStartFailure?.(this.deadReason);
    const p = this.pending;
    if (p) {
      this.finish(p);
      if (p.timedOut) {
        // A timed-out call whose kill went unanswered is still a TIMEOUT, with the output it produced.
        p.resolve({ exitCode: -1, timedOut: true, durationMs: Math.round(performance.now() - p.t0), stdout: p.out.result(), stderr: captureOf(Buffer.alloc(0), 0) });
      } else {
        // What the call started may outlive its supervisor (killed by the command itself): its group goes too.
        if (this.dir) this.kill(p);
        p.reject(new SessionDiedError(`executor session died during the call: ${this.deadReason}`));
      }
    }
    this.channel?.close();
    this.proc.close();
    if (!p && reason !== 'closed') this.onIdleEnd?.();
  }
}
