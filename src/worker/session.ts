import type { Logger } from 'pino';
import type { AttachedProcess, ContainerDriver } from './container-driver.js';
import { FrameParser, type Capture, type SupervisorEvent } from './frame-parser.js';
import { SUPERVISOR_HEAD_BYTES, SUPERVISOR_SCRIPT, SUPERVISOR_TAIL_BYTES, encodeCommand } from './supervisor-script.js';
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

/** The executor session died (or lost framing) during a call. */
export class SessionDiedError extends SlotqError {
  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, { cause, retryable: true });
  }
}

interface Pending {
  id: string;
  req: RunRequest;
  t0: number;
  timedOut: boolean;
  started?: { pgid: number; dir: string };
  timer: NodeJS.Timeout;
  killTimer?: NodeJS.Timeout;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

const KILL_ANSWER_MS = 5000;
const READY_TIMEOUT_MS = 15_000;

/**
 * One persistent supervisor process in a slot's container, fed calls over an attached exec stream.
 * One call at a time (the slot serialises them). A timeout kills the call's process group out of band.
 */
export class SupervisorSession {
  private readonly parser = new FrameParser();
  private pending: Pending | undefined;
  private seq = 0;
  private deadReason: string | undefined;
  private stderrTail = '';
  private onReady: ((pid: number) => void) | undefined;

  private constructor(
    private readonly driver: ContainerDriver,
    private readonly containerId: string,
    private readonly proc: AttachedProcess,
    private readonly log: Logger,
  ) {
    proc.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    proc.stdout.on('end', () => this.die('executor session ended'));
    proc.stdout.on('error', (err: Error) => this.die(`executor stream failed: ${err.message}`));
    proc.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
  }

  /** Starts a supervisor in the container and waits until it says READY. */
  static async open(driver: ContainerDriver, containerId: string, log: Logger, opts: { graceS?: number | 'none' } = {}): Promise<SupervisorSession> {
    const argv = ['sh', '-c', SUPERVISOR_SCRIPT, 'slotq-supervisor', String(SUPERVISOR_HEAD_BYTES), String(SUPERVISOR_TAIL_BYTES), String(opts.graceS ?? 3)];
    const proc = await driver.attach(containerId, argv);
    const session = new SupervisorSession(driver, containerId, proc, log);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`executor session did not start within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      session.onReady = () => (clearTimeout(timer), resolve());
      session.onDeathDuringStart = (reason) => (clearTimeout(timer), reject(new Error(`executor session failed to start: ${reason}`)));
    }).catch((err: unknown) => {
      proc.close();
      throw err;
    });
    session.onDeathDuringStart = undefined;
    return session;
  }

  private onDeathDuringStart: ((reason: string) => void) | undefined;

  get alive(): boolean {
    return this.deadReason === undefined;
  }

  run(req: RunRequest): Promise<RunResult> {
    if (this.deadReason !== undefined) return Promise.reject(new SessionDiedError(`executor session is dead: ${this.deadReason}`));
    if (this.pending) return Promise.reject(new Error('SupervisorSession.run called while a call is in flight'));
    const id = String(++this.seq);
    const stdin = req.stdin ?? Buffer.alloc(0);
    return new Promise<RunResult>((resolve, reject) => {
      const p: Pending = { id, req, t0: performance.now(), timedOut: false, timer: setTimeout(() => this.onTimeout(p), req.timeoutMs), resolve, reject };
      this.pending = p;
      const header = `${req.mode} ${id} ${stdin.length}\n${encodeCommand(req.command)}\n`;
      this.proc.stdin.write(stdin.length ? Buffer.concat([Buffer.from(header), stdin]) : header);
    });
  }

  close(): void {
    this.die('closed');
  }

  private onData(chunk: Buffer): void {
    let events: SupervisorEvent[];
    try {
      events = this.parser.push(chunk);
    } catch (err) {
      this.die(toError(err).message);
      return;
    }
    for (const ev of events) this.onEvent(ev);
  }

  private onEvent(ev: SupervisorEvent): void {
    const p = this.pending;
    if (ev.type === 'ready') {
      this.onReady?.(ev.pid);
      return;
    }
    if (!p || ev.id !== p.id) {
      this.die(`executor answered call ${ev.id}, expected ${p?.id ?? 'none'}`);
      return;
    }
    if (ev.type === 'started') {
      p.started = { pgid: ev.pgid, dir: ev.dir };
      if (p.timedOut) this.kill(p);
      return;
    }
    this.finish(p);
    p.resolve({ exitCode: p.timedOut ? -1 : ev.exitCode, timedOut: p.timedOut, durationMs: Math.round(performance.now() - p.t0), stdout: ev.stdout, stderr: ev.stderr });
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
    this.deadReason = this.stderrTail ? `${reason} (${this.stderrTail.trim().slice(-300)})` : reason;
    this.onDeathDuringStart?.(this.deadReason);
    const p = this.pending;
    if (p) {
      this.finish(p);
      p.reject(new SessionDiedError(`executor session died during the call: ${this.deadReason}`));
    }
    this.proc.close();
  }
}
