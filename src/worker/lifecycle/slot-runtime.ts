import type { Logger } from 'pino';
import type { ContainerDriver } from '../engine/container-driver.js';
import type { AttachedProcess, ExecOutput } from '../executor/exec-port.js';
import { SessionDiedError, SupervisorSession, type RunRequest, type RunResult } from '../executor/session.js';
import { InsideSlotError, SlotBrokenError, SlotqError, toError } from '../../shared/errors.js';
import { classifyContainerLoss, DeathForensics, sessionDeathMessage, type LostCause } from './death-forensics.js';
import type { EgressPolicy } from '../../shared/calls/egress.js';
import { CAPTURE_HEAD_BYTES } from '../executor/bounded-capture.js';
import { oneShotArgv } from '../executor/executor-protocol.js';

import { INTERNAL_STDOUT_BYTES, type ArtifactIo, type SlotOffer } from '../tools/slot-access.js';
import type { ImageProfile } from '../engine/image-profile.js';

/** What a slot of this image offers, on a worker with this network. */
export const offerOf = (profile: ImageProfile, network: string): SlotOffer => ({
  sh: profile.shell ?? '',
  stateful: profile.bash ?? profile.shell ?? '',
  tmux: profile.tmux ?? '',
  networkIsolated: network === 'none',
  user: profile.user,
  uid: profile.uid,
});

/** How many times an idle slot whose session ended asks the engine about its container (every 0.5 s while the engine does not answer: 30 s). */
const IDLE_CHECK_ATTEMPTS = 60;

/** The warm-up call at a session's start (it starts the launcher). */
const LAUNCHER_START_TIMEOUT_MS = 10_000;

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
  /** Why the container died: 'oom' or 'disk_full' (the slot itself did it), 'container_killed' or 'container_died' (from outside). */
  lostCause: LostCause | undefined;
  /** Why the session or the container died (death-forensics.ts). */
  private readonly forensics: DeathForensics;

  constructor(
    readonly slotId: string,
    public containerId: string,
    private readonly driver: ContainerDriver,
    /** What the slot's image offers (from the worker's image profile) and its network policy. */
    readonly offer: SlotOffer,
    private readonly log: Logger,
  ) {
    this.forensics = new DeathForensics(driver, {
      containerId: () => this.containerId,
      execInternal: (script, timeoutMs) => this.execInternal(script, timeoutMs),
      checkContainer: (cause) => this.checkContainer(cause),
    });
  }

  /** Container access for the artifact helpers, through this runtime (it reads containerId at call time). */
  /** The slot's egress policy, from outside it (engine/egress.ts); a policy on a slot without a network is already met or refused. */
  async egress(policy: EgressPolicy): Promise<void> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    if (this.offer.networkIsolated) {
      if (policy === 'none') return;
      throw new SlotqError('INVALID_ARGS', 'this slot has no network at all (its worker runs with SLOTQ_NETWORK=none), so an allow list cannot be met: run workers with a network for it', { retryable: false, details: { cause: 'no_network' } });
    }
    if (!this.driver.setEgress) throw new SlotqError('INVALID_ARGS', 'this worker cannot enforce an egress policy', { retryable: false, details: { cause: 'egress_unenforceable' } });
    await this.driver.setEgress(this.containerId, policy);
  }

  readonly io: ArtifactIo = { exec: (script, timeoutMs) => this.execInternal(script, timeoutMs), stream: (script, timeoutMs) => this.streamInternal(script, timeoutMs) };

  /** Runs fn after everything enqueued before it (FIFO), whatever those did. */
  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const next = this.chain.then(fn).finally(() => this.queued--);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Calls enqueued and not yet settled (running or waiting). */
  private queued = 0;
  /** Harness execs running beside the FIFO now. */
  private besides = 0;

  /**
   * Runs fn at once, beside the FIFO, when the slot is busy and fewer than `limit` such calls run: a
   * harness's concurrent exec (a server and its client, a poll while a command runs). Its requests go over
   * one-shot execs (runBeside), as the session runs one call at a time. undefined when it should queue.
   */
  beside<T>(limit: number, fn: () => Promise<T>): Promise<T> | undefined {
    if (this.queued === 0 || this.besides >= limit) return undefined;
    this.besides++;
    return fn().finally(() => this.besides--);
  }

  /** A request of a call running beside the FIFO (beside()): always a one-shot exec. */
  async runBeside(req: RunRequest): Promise<RunResult> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    return this.runOneShot(req);
  }

  /**
   * Set by the worker: gives the slot a new container (called inside the slot's FIFO) when its container
   * died while no call ran, so the slot's next call, or next holder, does not find it dead.
   */
  onContainerGone: ((slot: SlotRuntime) => Promise<void>) | undefined;

  async openSession(): Promise<void> {
    this.session?.close();
    const session = (this.session = await SupervisorSession.open(this.driver, this.containerId, this.offer, this.log));
    session.onIdleEnd = () => void this.enqueue(() => this.idleSessionEnded(session)).catch(() => undefined);
    // The launcher (native/slotq-spawn.c) takes over at a session's first call: make that call now, while the
    // slot is being made or reset, so a trajectory's first call does not pay for starting it.
    await session.run({ mode: 'i', command: ':', timeoutMs: LAUNCHER_START_TIMEOUT_MS }).catch((err: unknown) => this.log.debug({ err: toError(err).message }, 'the warm-up call failed'));
  }

  /** Runs on the persistent session, restarting it when it died; detects a dead container. */
  async run(req: RunRequest): Promise<RunResult> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    // The session runs as the slot's user and no one in the slot may switch users (no capabilities).
    if (req.user !== undefined) return this.runOneShot(req);
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
      const r = await this.session!.run(req);
      this.forensics.noteCounters(r.flags);
      return r;
    } catch (err) {
      if (!(err instanceof SessionDiedError)) throw err;
      await this.checkContainer(err);
      // The container lives and only this call's session died: the command did it (kill -9 $PPID, a fork
      // bomb, memory exhausted); the slot's cgroup counters say which.
      const cause = await this.forensics.sessionDeathCause();
      throw new InsideSlotError(sessionDeathMessage(cause, err.message), cause);
    }
  }

  /**
   * The session ended while no call ran. A container the engine says is gone is marked broken and replaced
   * now; a live one (something in the slot killed the supervisor) gets a new session at its next call.
   * While the engine does not answer (dockerd restarting), it is asked again for a while.
   */
  private async idleSessionEnded(session: SupervisorSession): Promise<void> {
    if (this.session !== session || this.brokenReason !== undefined) return;
    // Docker may report a dying container as running for a moment: only several answers in a row count.
    let runningAnswers = 0;
    for (let i = 0; i < IDLE_CHECK_ATTEMPTS && runningAnswers < 5; i++) {
      const running = await this.driver.isRunning(this.containerId).catch(() => undefined);
      if (this.session !== session) return; // reset or replaced meanwhile
      if (running === false) {
        this.log.warn({ containerId: this.containerId }, 'the container of an idle slot died; replacing it');
        await this.markBroken(new Error("the slot's container died while no call ran")).catch(() => undefined);
        await this.onContainerGone?.(this);
        return;
      }
      if (running) runningAnswers++;
      await new Promise((r) => setTimeout(r, running ? 100 : 500));
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
    const out = await this.driver.exec(this.containerId, oneShotArgv(req.mode, this.offer, req.command, timeoutS), {
      timeoutMs: req.timeoutMs + ONE_SHOT_SLACK_MS,
      capBytes: CAPTURE_HEAD_BYTES,
      ...(req.stdoutCap !== undefined ? { wholeStdoutBytes: req.stdoutCap } : {}),
      ...(req.stdin ? { stdin: req.stdin } : {}),
      ...(req.user !== undefined ? { user: req.user } : {}),
    });
    const durationMs = Math.round(performance.now() - t0);
    const timedOut = out.exitCode === 137 && durationMs >= req.timeoutMs;
    return { exitCode: timedOut ? -1 : out.exitCode, timedOut, durationMs, stdout: out.stdoutCapture, stderr: out.stderrCapture };
  }

  /** slotq's own script over a one-shot exec with whole stdout up to INTERNAL_STDOUT_BYTES (artifacts bigger than the session's capture). */
  async execInternal(script: string, timeoutMs: number): Promise<ExecOutput> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    const argv = oneShotArgv('i', this.offer, script, Math.max(1, Math.ceil(timeoutMs / 1000)));
    return this.driver.exec(this.containerId, argv, { timeoutMs: timeoutMs + ONE_SHOT_SLACK_MS, wholeStdoutBytes: INTERNAL_STDOUT_BYTES }).catch(async (err: unknown) => {
      await this.checkContainer(err);
      throw err;
    });
  }

  /** slotq's own script with its stdout streamed (archives); the caller closes it. */
  async streamInternal(script: string, timeoutMs: number): Promise<AttachedProcess> {
    if (this.brokenReason) throw new SlotBrokenError(this.brokenReason);
    return this.driver.attach(this.containerId, oneShotArgv('i', this.offer, script, Math.max(1, Math.ceil(timeoutMs / 1000)))).catch(async (err: unknown) => {
      await this.checkContainer(err);
      throw err;
    });
  }

  /** Throws SLOT_BROKEN when the container is dead. Docker may report a dying container as running for a moment. */
  private async checkContainer(cause: unknown): Promise<void> {
    for (let i = 0; i < 5; i++) {
      if (!(await this.driver.isRunning(this.containerId).catch(() => false))) return await this.markBroken(cause);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The container is gone: the slot is marked broken with the cause the engine tells (death-forensics.ts), and the call fails. */
  private async markBroken(cause: unknown): Promise<never> {
    const death = await this.forensics.engineVerdict();
    this.session?.close();
    this.session = undefined;
    const loss = classifyContainerLoss(death, cause);
    this.lostCause = loss.lostCause;
    this.brokenReason = loss.brokenReason;
    throw loss.error;
  }

  /** Points the slot at a fresh container (after reset or replacement) and starts its session. */
  async attachContainer(containerId: string): Promise<void> {
    this.session?.close();
    this.session = undefined;
    this.containerId = containerId;
    this.brokenReason = undefined;
    this.forensics.attached();
    await this.openSession();
  }

  /** Kills the call running on the slot's session (rootfs-guard.ts); false when none runs there (the one-shot fallback). */
  killCurrentCall(): boolean {
    return this.session?.killCurrent() ?? false;
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}
