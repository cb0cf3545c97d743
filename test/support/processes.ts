import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts a TypeScript entry point in its own Node process; resolves when it prints `readyLine`. */
export async function startProcess(args: string[], env: Record<string, string>, readyLine: RegExp, timeoutMs = 60_000): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process did not get ready in ${timeoutMs} ms: ${seen.slice(-2000)}`)), timeoutMs);
    const onData = (b: Buffer): void => {
      seen = (seen + b.toString()).slice(-20_000);
      if (readyLine.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`process exited with ${code}: ${seen.slice(-2000)}`))));
  });
  return child;
}

/** Starts `slotq worker` in a child process; resolves when it logged "worker started". */
export function startWorkerProcess(env: Record<string, string>): Promise<ChildProcess> {
  return startProcess(['src/cli/main.ts', 'worker', '--log-level', 'info'], env, /worker started/);
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
