import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AttachedProcess, ContainerDriver } from './container-driver.js';
import { BoundedCapture, MarkerScanner, parseControl, type Capture, type ControlEvent } from './frame-parser.js';
import { SUPERVISOR_SCRIPT, encodeCommand } from './supervisor-script.js';
import { SlotqError, toError } from '../shared/errors.js';

export interface RunRequest {
  /** s: fresh sh per call; t: the slot's persistent bash. */
  mode: 's' | 't';
  command: string;
  stdin?: Buffer;
  timeoutMs: number;
}

export interface RunResult {
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
  stdout: Capture;
  stderr: Capture;
}

/** The executor session died (or broke its protocol) during a call. */
export class SessionDiedError extends SlotqError {
  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, { cause, retryable: true });
  }
}

interface Pending {
  req: RunRequest;
  t0: number;
  timedOut: boolean;
  started?: { pgid: number; dir: string };
  timer: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  out: BoundedCapture;
  err: BoundedCapture;
  outScan: MarkerScanner;
  errScan: MarkerScanner;
  /** Bytes of a control line after the nonce on stderr, until its newline. */
  control?: Buffer;
  outDone: boolean;
  exitCode?: number;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const KILL_ANSWER_MS = 5000;
const READY_TIMEOUT_MS = 15_000;
const MAX_CONTROL_BYTES = 512;
const NL = 0x0a;

/**
 * One persistent supervisor process in a slot's container, fed calls over an attached exec stream.
 * One call at a time (the slot serialises them). A timeout kills the call's process group out of band.
 */
export class SupervisorSession {
  private pending: Pending | undefined;
  private seq = 0;
  private deadReason: string | undefined;
  private idleErr = '';
  private onReady: (() => void) | undefined;
  private onStartFailure: ((reason: string) => void) | undefined;

  private constructor(
    private readonly driver: ContainerDriver,
    private readonly containerId: string,
    private readonly proc: AttachedProcess,
    private readonly log: Logger,
  ) {
    proc.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk));
    proc.stderr.on('data', (chunk: Buffer) => this.guard(() => this.onStderr(chunk)));
    proc.stdout.on('end', () => this.die('executor session ended'));
    proc.stdout.on('error', (err: Error) => this.die(`executor stream failed: ${err.message}`));
  }

  /** Starts a supervisor in the container and waits until it says READY. */
  static async open(driver: ContainerDriver, containerId: string, log: Logger, opts: { graceS?: number | 'none' } = {}): Promise<SupervisorSession> {
    const proc = await driver.attach(containerId, ['sh', '-c', SUPERVISOR_SCRIPT, 'slotq-supervisor', String(opts.graceS ?? 3)]);
    const session = new SupervisorSession(driver, containerId, proc, log);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`executor session did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      session.onReady = () => (clearTimeout(timer), resolve());
      session.onStartFailure = (reason) => (clearTimeout(timer), reject(new Error(`executor session failed to start: ${reason}`)));
    }).catch((err: unknown) => {
      proc.close();
      throw err;
    });
    session.onStartFailure = undefined;
    return session;
  }

  get alive(): boolean {
    return this.deadReason === undefined;
  }

  run(req: RunRequest): Promise<RunResult> {
    if (this.deadReason !== undefined) return Promise.reject(new SessionDiedError(`executor session is dead: ${this.deadReason}`));
    if (this.pending) return Promise.reject(new Error('SupervisorSession.run called while a call is in flight'));
    const id = ++this.seq;
    const nonce = `@sq${randomBytes(10).toString('hex')}@`;
    const stdin = req.stdin ?? Buffer.alloc(0);
    return new Promise<RunResult>((resolve, reject) => {
      const marker = Buffer.from(nonce);
      const p: Pending = {
        req,
        t0: performance.now(),
        timedOut: false,
        timer: setTimeout(() => this.onTimeout(p), req.timeoutMs),
        out: new BoundedCapture(),
        err: new BoundedCapture(),
        outScan: new MarkerScanner(marker),
        errScan: new MarkerScanner(marker),
        outDone: false,
        resolve,
        reject,
      };
      this.pending = p;
      const header = `${req.mode} ${id} ${nonce} ${stdin.length}\n${encodeCommand(req.command)}\n`;
      this.proc.stdin.write(stdin.length ? Buffer.concat([Buffer.from(header), stdin]) : header);
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
    if (!p || p.outDone) return; // output of an escaped background process: nobody's
    const r = p.outScan.feed(chunk);
    p.out.push(r.data);
    if (r.found) {
      p.outDone = true;
      this.maybeFinish(p);
    }
  }

  private onStderr(chunk: Buffer): void {
    const p = this.pending;
    if (!p) return this.onIdleStderr(chunk);
    while (chunk.length > 0 && p.exitCode === undefined) {
      if (p.control) {
        const nl = chunk.indexOf(NL);
        p.control = Buffer.concat([p.control, nl < 0 ? chunk : chunk.subarray(0, nl)]);
        if (p.control.length > MAX_CONTROL_BYTES) throw new Error('executor control line too long');
        if (nl < 0) return;
        const line = p.control.toString('latin1');
        delete p.control;
        this.onControl(p, parseControl(line));
        chunk = chunk.subarray(nl + 1);
        continue;
      }
      const r = p.errScan.feed(chunk);
      p.err.push(r.data);
      if (!r.found) return;
      p.control = Buffer.alloc(0);
      chunk = r.rest;
    }
  }

  private onIdleStderr(chunk: Buffer): void {
    this.idleErr = (this.idleErr + chunk.toString('latin1')).slice(-2000);
    const m = /READY (\d+)\n/.exec(this.idleErr);
    if (m && this.onReady) {
      this.idleErr = '';
      this.onReady();
      this.onReady = undefined;
    }
  }

  private onControl(p: Pending, ev: ControlEvent): void {
    if (ev.type === 'started') {
      p.started = { pgid: ev.pgid, dir: ev.dir };
      if (p.timedOut) this.kill(p);
      return;
    }
    p.exitCode = ev.exitCode;
    this.maybeFinish(p);
  }

  private maybeFinish(p: Pending): void {
    if (!p.outDone || p.exitCode === undefined || this.pending !== p) return;
    this.finish(p);
    p.resolve({
      exitCode: p.timedOut ? -1 : p.exitCode,
      timedOut: p.timedOut,
      durationMs: Math.round(performance.now() - p.t0),
      stdout: p.out.result(),
      stderr: p.err.result(),
    });
  }

  private onTimeout(p: Pending): void {
    p.timedOut = true;
    if (p.started) this.kill(p);
    p.killTimer = setTimeout(() => this.die(`the call did not stop within ${KILL_ANSWER_MS} ms of being killed`), KILL_ANSWER_MS);
  }

  /** Kills the call's whole process group; for a stateful call also unblocks the supervisor. */
  private kill(p: Pending): void {
    const { pgid, dir } = p.started!;
    const script = p.req.mode === 't' ? `kill -9 -${pgid} 2>/dev/null; exec 3<>${dir}/sout; echo 137 >&3` : `kill -9 -${pgid} 2>/dev/null; true`;
    this.driver.exec(this.containerId, ['sh', '-c', script], { timeoutMs: KILL_ANSWER_MS }).catch((err: unknown) => {
      this.log.warn({ err: toError(err).message }, 'killing a timed-out call failed');
    });
  }

  private finish(p: Pending): void {
    clearTimeout(p.timer);
    if (p.killTimer) clearTimeout(p.killTimer);
    this.pending = undefined;
  }

  private die(reason: string): void {
    if (this.deadReason !== undefined) return;
    const detail = this.idleErr.trim().slice(-300);
    this.deadReason = detail ? `${reason} (${detail})` : reason;
    this.onStartFailure?.(this.deadReason);
    const p = this.pending;
    if (p) {
      this.finish(p);
      p.reject(new SessionDiedError(`executor session died during the call: ${this.deadReason}`));
    }
    this.proc.close();
  }
}
