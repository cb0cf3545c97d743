import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ManagedProcess, startWorkerProcess as startWorker, tsxArgs } from '../../tools/testkit/processes.js';

/**
 * Child processes for tests, on top of tools/testkit/processes.ts (the harness's leak check sees them).
 * Kept for tests that want a plain ChildProcess.
 */

/** Starts a TypeScript entry point (path relative to the package root) in its own Node process; resolves when it prints `readyLine`. */
export async function startProcess(args: string[], env: Record<string, string>, readyLine: RegExp, timeoutMs = 60_000): Promise<ChildProcess> {
  const [file = '', ...rest] = args;
  return (await ManagedProcess.start(file, [...tsxArgs(file), ...rest], env, readyLine, timeoutMs)).child;
}

/** Starts `slotq worker` in a child process; resolves when it logged "worker started". */
export async function startWorkerProcess(env: Record<string, string>): Promise<ChildProcess> {
  return (await startWorker('slotq worker', env, [], 60_000)).child;
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
