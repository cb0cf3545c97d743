import { afterEach, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

it('a producer that dies between releasing with reset and sending the reset job strands no slot: the worker resets it', async () => {
  h = harness();
  const w = await h.worker({ slots: 1, warmSpares: 0, workerLostMs: 2000 });
  const b = await h.backend();
  const slot = await b.acquire('stranded');
  await b.executeBatch([[slot, 'write_file', { path: 'left.txt', content: 'x' }]]);
  const before = w.slots.get(slot.slotId)!.containerId;
  // The registry half of a release with reset, and then nothing: the producer "died" before the job.
  const registry = new Registry(h.redis(), keysFor(h.prefix));
  expect(await registry.release(slot.slotId, slot.leaseId, true)).toBe('resetting');
  await waitFor(async () => (await registry.slotStates([slot.slotId])).get(slot.slotId) === 'free', 30_000, 'the stranded slot to be reset and free');
  expect(w.slots.get(slot.slotId)!.containerId).not.toBe(before);
  const again = await b.acquire('next');
  const [ls] = await b.executeBatch([[again, 'bash', { command: 'ls -A /workspace | wc -l' }]]);
  expect(ls!.output.trim()).toBe('0'); // pristine
  await b.release(again);
});
