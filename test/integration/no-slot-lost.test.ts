import { afterEach, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
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

it('capacity an acquire reserved for a provision job that never came comes back: the worker reclaims it', async () => {
  h = harness();
  const image = 'slotq-test-busybox:latest';
  const w = await h.worker({ slots: 1, warmSpares: 0, workerLostMs: 2000, images: image, ondemandSlots: 2, reservationReclaimMs: 500 });
  const redis = h.redis();
  const { images: k } = keysFor(h.prefix);
  const capacity = async (): Promise<string | null> => redis.zscore(k.capacity, w.workerId);
  const registry = new Registry(redis, keysFor(h.prefix));
  const orphan = (waiterId: string, waiterTtlMs: number): ReturnType<Registry['acquireImage']> =>
    registry.acquireImage({ trajectoryId: `t-${waiterId}`, owner: 'gone', leaseId: waiterId, ttlMs: 60_000, waiterId, waiterTtlMs, image });
  // Both units reserved on the worker and no provision job sent: one producer lost the script's reply (it
  // withdraws its waiter, as slot-leases does), the other died (its waiter expires).
  expect(await orphan('lost-reply', 60_000)).toEqual({ wait: w.workerId });
  await registry.cancelWaiter('lost-reply');
  expect(await orphan('died', 1)).toEqual({ wait: w.workerId });
  const b = await h.backend();
  const slots = await Promise.all(['r1', 'r2'].map((t) => b.acquire(t, { image, timeoutMs: 20_000 })));
  expect(slots.map((s) => s.workerId)).toEqual([w.workerId, w.workerId]);
  expect(await redis.zcard(k.reserved)).toBe(0);
  for (const s of slots) await b.release(s);
  await waitFor(async () => (await capacity()) === '2', 30_000, 'both units of capacity back once the containers are gone');
  // A job that comes after its reservation was reclaimed takes capacity anew: the count stays right.
  expect(await orphan('late', 60_000)).toEqual({ wait: w.workerId });
  await registry.cancelWaiter('late');
  await waitFor(async () => (await capacity()) === '2', 30_000, 'the reservation reclaimed');
  expect(await registry.takeReservation(w.workerId, 'late')).toBe(false);
  expect(await capacity()).toBe('1');
});
