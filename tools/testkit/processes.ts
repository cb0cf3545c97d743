import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withDeadline } from '../../src/shared/deadline.js';

const execFileP = promisify(execFile);
/** The package root: child processes run from there, so tsx and the sources resolve. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Node arguments that run a TypeScript file of the package (path relative to its root) through tsx. */
export const tsxArgs = (file: string): string[] => ['--import', 'tsx', file];
/** `slotq <args>` from source. */
export const slotqArgs = (...args: string[]): string[] => tsxArgs('src/cli/main.ts').concat(args);

/** Every ManagedProcess not yet exited: the harness's leak check fails on those a test left running. */
const live = new Set<ManagedProcess>();
export const liveProcesses = (): ManagedProcess[] => [...live];

/** A child Node process of a test or a tool: started, watched for a ready line, killed or stopped, its RSS sampled. */
export class ManagedProcess {
  private seen = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    live.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        live.delete(this);
        resolve(code);
      }),
    );
    const keep = (b: Buffer): void => {
      this.seen = (this.seen + b.toString()).slice(-50_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  /** Spawns `node <args>` and resolves once its output matches `readyLine`; kills it when it does not in time. */
  static async start(name: string, args: string[], env: Record<string, string>, readyLine: RegExp, timeoutMs = 90_000): Promise<ManagedProcess> {
    const child = spawn(process.execPath, args, { cwd: PACKAGE_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new ManagedProcess(name, child);
    let onData = (): void => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      onData = () => void (readyLine.test(proc.output()) && resolve());
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void proc.exited.then((code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${proc.output().slice(-3000)}`)));
    });
    try {
      await withDeadline(ready, timeoutMs, () => new Error(`${name} not ready within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`));
    } catch (err) {
      await proc.kill();
      throw err;
    } finally {
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
    }
    return proc;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What it printed last (its log lines), for error messages. */
  output(): string {
    return this.seen;
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Sends signal (default SIGTERM: a worker drains and removes its containers), SIGKILL after timeoutMs. Resolves with the exit code. */
  async stop(timeoutMs = 60_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident set size in KiB (`ps -o rss=`), undefined when the process is gone. */
  async rssKb(): Promise<number | undefined> {
    if (!this.running || this.pid === undefined) return undefined;
    try {
      const { stdout } = await execFileP('ps', ['-o', 'rss=', '-p', String(this.pid)]);
      const kb = Number(stdout.trim());
      return Number.isFinite(kb) && kb > 0 ? kb : undefined;
    } catch (err) {
      if ((err as { code?: unknown }).code === 1) return undefined; // ps exits 1 when the process just ended
      throw err;
    }
  }
}

/** Starts `slotq worker` from source in a child process; resolves once it logged "worker started". */
export function startWorkerProcess(name: string, env: Record<string, string>, extraArgs: string[] = [], timeoutMs?: number): Promise<ManagedProcess> {
  return ManagedProcess.start(name, slotqArgs('worker', ...extraArgs), { SLOTQ_LOG_LEVEL: 'info', ...env }, /"msg":"worker started"/, timeoutMs);
}

/** A producer process holding `count` slots (tools/testkit/hold-slot.ts), to be killed; see heldBy for what it holds. */
export function startSlotHolder(name: string, count: number, env: Record<string, string>): Promise<ManagedProcess> {
  return ManagedProcess.start(name, tsxArgs('tools/testkit/hold-slot.ts'), { SLOTQ_HOLD_SLOTS: String(count), ...env }, /HELD \S+ \w+/);
}

/** The slot IDs a slot holder printed, and whether its own calls succeeded. */
export function heldBy(holder: ManagedProcess): { slotIds: string[]; ok: boolean } {
  const [, ids = '', ok] = /HELD (\S+) (\w+)/.exec(holder.output()) ?? [];
  return { slotIds: ids ? ids.split(',') : [], ok: ok === 'ok' };
}
