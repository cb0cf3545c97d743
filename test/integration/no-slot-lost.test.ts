import { afterEach, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry.js';
import { containersOf, harness, waitFor, type Harness } from '../support/harness.js';

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

it('the same for an on-demand slot of a trajectory image: the sweep retires it, its container goes and its capacity comes back', async () => {
  h = harness();
  const w = await h.worker({ slots: 1, warmSpares: 0, workerLostMs: 2000, images: 'slotq-test-busybox:latest', ondemandSlots: 1 });
  const b = await h.backend();
  const slot = await b.acquire('stranded-image', { image: 'slotq-test-busybox:latest', timeoutMs: 60_000 });
  const container = w.slots.get(slot.slotId)!.containerId;
  const registry = new Registry(h.redis(), keysFor(h.prefix));
  expect(await registry.release(slot.slotId, slot.leaseId, true)).toBe('resetting'); // and no reset job
  await waitFor(() => !w.slots.has(slot.slotId), 30_000, 'the stranded on-demand slot to be retired');
  expect((await containersOf(h.prefix)).includes(container)).toBe(false);
  // Its one unit of on-demand capacity is back: another image-slot can be had.
  const again = await b.acquire('next-image', { image: 'slotq-test-busybox:latest', timeoutMs: 60_000 });
  await b.release(again, { resetWorkspace: true });
});
