import { setTimeout as sleep } from 'node:timers/promises';

/** Polls fn (every pollMs) until it returns true; throws after timeoutMs naming what it waited for. */
export async function waitUntil(fn: () => Promise<boolean> | boolean, timeoutMs: number, what: string, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(pollMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
