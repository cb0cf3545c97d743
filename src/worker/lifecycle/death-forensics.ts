import type { ContainerDeathCause, ContainerDriver } from '../engine/container-driver.js';
import type { ExecOutput } from '../executor/exec-port.js';
import type { RunResult } from '../executor/session.js';
import { SlotBrokenError, toError } from '../../shared/errors.js';

/** Prints the slot cgroup's OOM-kill and refused-fork counters (cgroup v1 or v2 layout). */
const COUNTERS_SCRIPT = 'cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events /sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/pids.events 2>/dev/null; true';

/** Why a slot's container died: 'oom' or 'disk_full' (the slot itself did it), 'container_killed' or 'container_died' (from outside). */
export type LostCause = 'oom' | 'disk_full' | 'container_killed' | 'container_died';

/** What the runtime needs of itself to look into a death: its container now, slotq's own exec, and its dead-container check. */
export interface ForensicsHost {
  containerId(): string;
  execInternal(script: string, timeoutMs: number): Promise<ExecOutput>;
  /** Throws SLOT_BROKEN when the container is dead. */
  checkContainer(cause: unknown): Promise<void>;
}

/**
 * Explains why a slot's session or container died: the slot cgroup's counters (which of them grew since the
 * last call) and the engine's events about the container since it was attached.
 */
export class DeathForensics {
  /** When the current container was attached (the engine's events about it start there). */
  private attachedAtMs = Date.now();
  /** The slot cgroup's OOM-kill and refused-fork totals last reported, to tell a new event from an old one. */
  private seen = { oom: 0, pids: 0 };

  constructor(
    private readonly driver: ContainerDriver,
    private readonly host: ForensicsHost,
  ) {}

  /** A new container: its counters and its engine events start now. */
  attached(): void {
    this.attachedAtMs = Date.now();
    this.seen = { oom: 0, pids: 0 };
  }

  /** The counters a call on the session reported (kept where it reported none). */
  noteCounters(flags: RunResult['flags']): void {
    this.seen = { oom: flags?.oomKills ?? this.seen.oom, pids: flags?.pidsRefused ?? this.seen.pids };
  }

  /** Reads the slot cgroup's counters after the session died: which of them grew names the cause. */
  async sessionDeathCause(): Promise<string> {
    try {
      const out = await this.host.execInternal(COUNTERS_SCRIPT, 5000);
      const text = out.stdout.toString();
      if (!/^(oom_kill|max) /m.test(text)) throw new Error(`no cgroup counters (exit ${out.exitCode})`);
      const oom = Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
      const pids = Number(/^max (\d+)$/m.exec(text)?.[1] ?? 0);
      const cause = oom > this.seen.oom ? 'oom' : pids > this.seen.pids ? 'pids_exhausted' : 'killed_executor_session';
      this.seen = { oom, pids };
      return cause;
    } catch (err) {
      await this.host.checkContainer(err); // the container may be dying only now (OOM), say so then
      // No exec starts in it (its memory is full of files, say): the engine's events tell an OOM.
      return (await this.engineVerdict()) === 'oom' ? 'oom' : 'killed_executor_session';
    }
  }

  /** The engine's events about this container since it was attached, asked again while they say nothing yet. */
  async engineVerdict(): Promise<ContainerDeathCause> {
    for (let i = 0; ; i++) {
      const v = (await this.driver.deathCause?.(this.host.containerId(), this.attachedAtMs).catch(() => 'unknown' as const)) ?? 'unknown';
      if (v !== 'unknown' || i === 3) return v;
      await new Promise((r) => setTimeout(r, 200)); // the engine publishes its events a moment later
    }
  }
}

/** What a call is told when its session died and the container lives, by the cause sessionDeathCause named. */
export const sessionDeathMessage = (cause: string, errMessage: string): string => {
  const what = cause === 'oom' ? 'exhausted the slot\'s memory: the kernel killed slotq\'s executor session for this slot' : cause === 'pids_exhausted' ? 'exhausted the slot\'s process limit and slotq\'s executor session for this slot died' : 'killed slotq\'s executor session for this slot';
  return `The command ${what} (${errMessage}); the call's result is lost. The slot still works: the next call gets a new session.`;
};

/** A dead container, classified: why it was lost, what later calls are told, and the error for this call. */
export interface ContainerLoss {
  lostCause: LostCause;
  brokenReason: string;
  error: SlotBrokenError;
}

/**
 * The container is gone. When the slot's own memory use killed it (the engine saw an OOM in it), the call
 * is the command's failure (not retryable, cause 'oom'); otherwise someone outside killed it (retryable).
 */
export const classifyContainerLoss = (death: ContainerDeathCause, cause: unknown): ContainerLoss => {
  if (death === 'oom') {
    return {
      lostCause: 'oom',
      brokenReason: `the slot's container was killed by the kernel because the slot exhausted its memory (files in /workspace and /tmp count towards it); its workspace is gone and the slot is being replaced`,
      error: new SlotBrokenError(`The command exhausted the slot's memory and the kernel killed its container (files in /workspace and /tmp count towards the memory limit): the workspace is gone and the slot gets a fresh container`, { cause, retryable: false, details: { cause: 'oom' } }),
    };
  }
  const lostCause = death === 'killed' ? 'container_killed' : 'container_died';
  const brokenReason = `the slot's container died (${toError(cause).message}); its workspace is gone and the slot is being replaced`;
  return { lostCause, brokenReason, error: new SlotBrokenError(brokenReason, { cause, details: { cause: lostCause } }) };
};
