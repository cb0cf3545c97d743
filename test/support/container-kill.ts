import { expect } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend, SlotWorker } from '../../src/index.js';
import { killContainer, runsIn } from '../../tools/testkit/docker.js';
import { waitFor } from './harness.js';

/**
 * The "container killed mid-call" scenario (faults.test.ts, runsc.test.ts): a file written, a call running,
 * the container killed from outside. Checks the call comes back SLOT_BROKEN and retryable; returns the next
 * two results of `[echo hi, afterCommand]` (the first says the workspace is gone, the second runs on a new
 * container) for the caller's own checks.
 */
export async function killContainerMidCall(b: SlotBackend, w: SlotWorker, s: Slot, afterCommand: string): Promise<{ containerId: string; told: ExecutionResult; after: ExecutionResult }> {
  await b.executeBatch([[s, 'write_file', { path: 'before.txt', content: 'x' }]]);
  const containerId = w.slots.get(s.slotId)!.containerId;
  const call = b.executeBatch([[s, 'bash', { command: 'sleep 20' }]]);
  await waitFor(() => runsIn(containerId, 'sleep 20'), 20_000, 'the call to start');
  await killContainer(containerId);
  const [broken] = await call;
  expect(broken!.metadata).toMatchObject({ code: 'SLOT_BROKEN', retryable: true });
  const [told, after] = await b.executeBatch([
    [s, 'bash', { command: 'echo hi' }],
    [s, 'bash', { command: afterCommand }],
  ]);
  expect(told!.metadata).toMatchObject({ code: 'SLOT_BROKEN', workspaceLost: true });
  return { containerId, told: told!, after: after! };
}
