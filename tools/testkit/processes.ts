import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const fromSource = import.meta.url.endsWith('.ts');
/** The package root (the child processes run from there, so tsx and the sources resolve). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Node arguments that run a module of src/cli (e.g. `main`, `chaos/holder`): through tsx from source, plain from dist. */
export function cliModuleArgs(name: string): string[] {
  const file = fileURLToPath(new URL(`../${name}.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  return [...(fromSource ? ['--import', 'tsx'] : []), file];
}

/** A child Node process of the chaos run: started, watched for a ready line, killed or stopped, its RSS sampled. */
export class ManagedProcess {
  private seen = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
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
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} not ready within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`)), timeoutMs);
        poll = setInterval(() => readyLine.test(proc.output()) && resolve(), 50);
        void proc.exited.then((code) => reject(new Error(`${name} exited with ${code} before it was ready:\n${proc.output().slice(-3000)}`)));
      });
    } catch (err) {
      await proc.kill();
      throw err;
    } finally {
      clearTimeout(timer);
      clearInterval(poll);
    }
    return proc;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What it printed last (its JSON log lines), for error messages. */
  output(): string {
    return this.seen;
  }

  /** SIGKILL, and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a worker drains and removes its containers), SIGKILL after timeoutMs. Resolves with the exit code. */
  async stop(timeoutMs = 60_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
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
