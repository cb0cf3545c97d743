import { toError } from '../../src/shared/errors.js';
import type { CallSpec, Outcome } from './calls.js';
import type { Trajectory } from './trajectory.js';

/** `echo <token>`, checked. */
export const echoCall = (text: string, timeoutS?: number): CallSpec => ({
  tool: 'bash',
  args: { command: `echo ${text}` },
  check: (r) => r.output === `${text}\n`,
  ...(timeoutS === undefined ? {} : { timeoutS }),
});

/** A self-contained unit of three checked calls: write a file, read it back, use it from the shell. */
export function fileUnit(text: string): CallSpec[] {
  const path = `work/${text}.txt`;
  return [
    { tool: 'write_file', args: { path, content: text }, check: (r) => r.success },
    { tool: 'read_file', args: { path }, check: (r) => r.output === text },
    { tool: 'bash', args: { command: `cat ${path}; echo "|$((6 * 7))"` }, check: (r) => r.output === `${text}|42\n` },
  ];
}

let seq = 0;
/** A unique token (sequence plus randomness) for one call's check. */
export const token = (tag: string): string => `${tag}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

export interface LoopStats {
  calls: number;
  outcomes: Record<Outcome, number>;
  /** End-to-end latency of every call (ms). */
  latenciesMs: number[];
}

/** Calls `echo` on the trajectory over and over until done() says stop; returns what happened. */
export async function echoWhile(traj: Trajectory, done: () => boolean, tag = traj.id): Promise<LoopStats> {
  const stats: LoopStats = { calls: 0, outcomes: { ok: 0, retry: 0, failed: 0 }, latenciesMs: [] };
  while (!done()) {
    const t0 = performance.now();
    const outcome = await traj.call(echoCall(token(tag)));
    stats.latenciesMs.push(performance.now() - t0);
    stats.calls++;
    stats.outcomes[outcome]++;
  }
  return stats;
}

/** A flag that turns true once the promise settled (either way), for loops to stop on. */
export function settledFlag(p: Promise<unknown>): () => boolean {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

/**
 * Runs one loop per item in the background, each repeating step() until stop(). A loop that throws stops
 * only itself; its error is kept (check() rethrows it at once, stop() after every loop ended).
 */
export class Loops<T> {
  private stopping = false;
  private error: Error | undefined;
  private readonly all: Promise<unknown>;

  constructor(items: readonly T[], step: (item: T) => Promise<unknown>) {
    const loop = async (item: T): Promise<void> => {
      while (!this.stopping) await step(item);
    };
    this.all = Promise.all(items.map((item) => loop(item).catch((err: unknown) => (this.error ??= toError(err)))));
  }

  /** Throws the first loop's error, if any (for use inside a polling condition). */
  check(): void {
    if (this.error !== undefined) throw this.error;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.all;
    this.check();
  }
}
