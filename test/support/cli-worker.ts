import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomId } from '../../src/shared/ids.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

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
  const env = { ...process.env, REDIS_URL: opts.redisUrl, SLOTQ_PREFIX: opts.prefix, SLOTQ_SLOTS: String(opts.slots), SLOTQ_WARM_SPARES: '1', SLOTQ_LOG_LEVEL: 'info', ...opts.env };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--worker-id', workerId], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer): void => {
      seen = (seen + b.toString()).slice(-50_000);
      if (seen.includes('"msg":"worker started"')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`slotq worker exited with ${code} before it was ready:\n${seen.slice(-3000)}`)));
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 45_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return exited;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const worker: CliWorker = { workerId, child, exited, output: () => seen, stop };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`slotq worker not ready in ${opts.timeoutMs ?? 60_000} ms:\n${seen.slice(-3000)}`)), opts.timeoutMs ?? 60_000)));
  try {
    await Promise.race([ready, deadline]);
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return worker;
}
