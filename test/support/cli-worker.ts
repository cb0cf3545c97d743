import type { ChildProcess } from 'node:child_process';
import { randomId } from '../../src/shared/ids.js';
import { startWorkerProcess } from '../../tools/testkit/processes.js';

/** A `slotq worker` in its own process (the CLI run through tsx), as an operator would start one. */
export interface CliWorker {
  readonly workerId: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Everything it printed (JSON log lines), for failure messages. */
  output(): string;
  /** Sends a signal and waits for the process to end (SIGKILL after timeoutMs). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts `slotq worker` with REDIS_URL / SLOTQ_PREFIX / SLOTQ_SLOTS; resolves once it logged "worker started". */
export async function startCliWorker(opts: { redisUrl: string; prefix: string; slots: number; env?: Record<string, string>; timeoutMs?: number }): Promise<CliWorker> {
  const workerId = `cli-${randomId(3)}`;
  const env = { REDIS_URL: opts.redisUrl, SLOTQ_PREFIX: opts.prefix, SLOTQ_SLOTS: String(opts.slots), SLOTQ_WARM_SPARES: '1', SLOTQ_LOG_LEVEL: 'info', ...opts.env };
  const proc = await startWorkerProcess(`slotq worker ${workerId}`, env, ['--worker-id', workerId], opts.timeoutMs ?? 60_000);
  return {
    workerId,
    child: proc.child,
    exited: proc.exited,
    output: () => proc.output(),
    stop: (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 45_000) => proc.stop(timeoutMs, signal),
  };
}
