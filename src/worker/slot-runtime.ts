import type { Logger } from 'pino';
import type { AttachedProcess, ContainerDriver, ExecOutput } from './container-driver.js';
import { SessionDiedError, SupervisorSession, type RunRequest, type RunResult } from './session.js';
import { InsideSlotError, SlotBrokenError, toError } from '../shared/errors.js';
import { CAPTURE_HEAD_BYTES } from './bounded-capture.js';
import { oneShotArgv, type SessionShells } from './executor-protocol.js';

/** What a slot offers beyond its shells: the image's tmux, and whether it has no network. */
export interface SlotTraits extends SessionShells {
  tmux: string;
  networkIsolated: boolean;
}
import type { ArtifactIo } from './artifact-context.js';

/** How long past its timeout a one-shot exec may take (the kill, dockerd) before it is abandoned. */
const ONE_SHOT_SLACK_MS = 10_000;

/**
 * One slot inside a worker: its container, its executor session, and a FIFO of calls.
 * Calls on a slot run one at a time in the order they were enqueued.
 */
export class SlotRuntime {
  private chain: Promise<unknown> = Promise.resolve();
  private session: SupervisorSession | undefined;
  /** Set when the container died; calls fail with SLOT_BROKEN until the slot gets a new container. */
  brokenReason: string | undefined;
  /** Set when a new container replaced a dead one; the holder's next call is told its workspace is gone. */
  workspaceLost = false;

  constructor(
    readonly slotId: string,
    public containerId: string,
    private readonly driver: ContainerDriver,
    /** What the slot's image offers (from the worker's image profile) and its network policy. */
    readonly traits: SlotTraits,
    private readonly log: Logger,
  ) {}

  /** Container access for the artifact helpers, through this runtime (it reads containerId at call time). */
  readonly io: ArtifactIo = { exec: (script, timeoutMs) => this.execInternal(script, timeoutMs), stream: (script, timeoutMs) => this.streamInternal(script, timeoutMs) };

  /** Runs fn after everything enqueued before it (FIFO), whatever those did. */
  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  async openSession(): Promise<void> {
    this.session?.close();
    this.session = await SupervisorSession.open(this.driver, this.containerId, this.traits, this.log);
  }

  /** Runs on the persistent session, restarting it when it died; detects a dead container. */
  async run(req: RunRequest): Promise<RunResult> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    if (!this.session?.alive) {
      try {
        await this.openSession();
      } catch (err) {
        await this.checkContainer(err);
        this.log.warn({ err: toError(err).message }, 'executor session cannot start; using one-shot docker exec');
        return this.runOneShot(req);
      }
    }
    try {
      return await this.session!.run(req);
    } catch (err) {
      if (!(err instanceof SessionDiedError)) throw err;
      await this.checkContainer(err);
      // The container lives and only this call's session died: the command did it (kill -9 $PPID, say).
      throw new InsideSlotError(`The command killed slotq's executor session for this slot (${err.message}); the call's result is lost. The slot still works: the next call gets a new session.`, 'killed_executor_session');
    }
  }

  /**
   * Fallback when no session can start: one plain `docker exec` per call, its process group killed at the
   * timeout, output capped like a session's. There is no persistent shell here, so a stateful call runs like
   * a stateless one.
   */
  private async runOneShot(req: RunRequest): Promise<RunResult> {
    const t0 = performance.now();
    const timeoutS = Math.max(1, Math.ceil(req.timeoutMs / 1000));
    const out = await this.driver.exec(this.containerId, oneShotArgv(req.mode, this.traits, req.command, timeoutS), { timeoutMs: req.timeoutMs + ONE_SHOT_SLACK_MS, capBytes: CAPTURE_HEAD_BYTES, ...(req.stdin ? { stdin: req.stdin } : {}) });
    const durationMs = Math.round(performance.now() - t0);
    const timedOut = out.exitCode === 137 && durationMs >= req.timeoutMs;
    return { exitCode: timedOut ? -1 : out.exitCode, timedOut, durationMs, stdout: out.stdoutCapture, stderr: out.stderrCapture };
  }

  /** slotq's own script over a one-shot exec with whole stdout (artifacts bigger than the session's capture). */
  async execInternal(script: string, timeoutMs: number): Promise<ExecOutput> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    const argv = oneShotArgv('i', this.traits, script, Math.max(1, Math.ceil(timeoutMs / 1000)));
    return this.driver.exec(this.containerId, argv, { timeoutMs: timeoutMs + ONE_SHOT_SLACK_MS }).catch(async (err: unknown) => {
      await this.checkContainer(err);
      throw err;
    });
  }

  /** slotq's own script with its stdout streamed (archives); the caller closes it. */
  async streamInternal(script: string, timeoutMs: number): Promise<AttachedProcess> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    return this.driver.attach(this.containerId, oneShotArgv('i', this.traits, script, Math.max(1, Math.ceil(timeoutMs / 1000)))).catch(async (err: unknown) => {
      await this.checkContainer(err);
      throw err;
    });
  }

  /** Throws SLOT_BROKEN when the container is dead. Docker may report a dying container as running for a moment. */
  private async checkContainer(cause: unknown): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if (!(await this.driver.isRunning(this.containerId).catch(() => false))) return this.markBroken(cause);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private markBroken(cause: unknown): never {
    this.brokenReason = `the slot's container died (${toError(cause).message}); its workspace is gone and the slot is being replaced`;
    this.session?.close();
    this.session = undefined;
    throw new SlotBrokenError(this.brokenReason, { cause });
  }

  /** Points the slot at a fresh container (after reset or replacement) and starts its session. */
  async attachContainer(containerId: string): Promise<void> {
    this.session?.close();
    this.session = undefined;
    this.containerId = containerId;
    this.brokenReason = undefined;
    await this.openSession();
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
