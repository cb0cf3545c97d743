import { Queue } from 'bullmq';
import { afterEach, expect, it } from 'vitest';
import { inboxMessageSchema } from '../../src/shared/calls/schemas.js';
import { runsIn } from '../../tools/testkit/docker.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

/**
 * At most once (contract §3): a call reported WORKER_LOST or past its deadline never runs afterwards. A file
 * each call appends to shows how many times it ran.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('counts the calls queued before a call on its slot in its deadline: a slow batch ahead does not make the next one give up and run anyway', async () => {
  h = harness();
  await h.worker({ slots: 1 });
  // 1 s of slack: without counting the queue, the second batch would be given up at ~3 s and run at ~4 s.
  const b = await h.backend({ deadlineSlackMs: 1000 });
  const s = await b.acquire();
  const slow = b.executeBatch([[s, 'bash', { command: 'sleep 4', timeout: 6 }]]);
  const next = b.executeBatch([[s, 'bash', { command: 'echo ran >> /workspace/log; cat /workspace/log', timeout: 1 }]]);
  const [[first], [second]] = await Promise.all([slow, next]);
  expect(first).toMatchObject({ success: true });
  expect(second).toMatchObject({ success: true, output: 'ran\n' });
  const [again] = await b.executeBatch([[s, 'bash', { command: 'cat /workspace/log' }]]);
  expect(again!.output).toBe('ran\n');
});

it('never starts a call that cannot end before its caller gives it up, and never runs one whose lease went while it waited', async () => {
  h = harness();
  const w = await h.worker({ slots: 1 });
  const b = await h.backend();
  const s = await b.acquire();
  const redis = h.redis();
  const queue = new Queue(w.queueName, { connection: h.redis(), prefix: w.keys.root });
  const call = (index: number, command: string, timeoutS: number) => ({ index, executionId: `e${index}`, slotId: s.slotId, leaseId: s.leaseId, tool: 'bash', args: { command }, timeoutS });
  const results = async (producerId: string) => {
    const popped = await redis.blpop(w.keys.inbox(producerId), 20);
    const msg = inboxMessageSchema.parse(JSON.parse(popped![1]));
    if (msg.t !== 'results') throw new Error(`unexpected inbox message ${msg.t}`);
    return msg.results.map(([, r]) => r);
  };
  // Given up at 3.5 s; after waiting ~2 s behind the first call, the second would need up to 2 s more: refused when it starts.
  await queue.add('calls', { v: 1, kind: 'calls', batchId: 'late', producerId: 'p-late', items: [call(0, 'sleep 2', 3), call(1, 'echo late >> /workspace/log', 2)], deadlineAtMs: Date.now() + 3500 });
  const late = await results('p-late');
  expect(late.map((r) => r.metadata.code)).toEqual([undefined, 'WORKER_LOST']);
  expect(late[1]!.error).toMatch(/Not run/);

  // A call waiting behind a slow one when its slot is released: its lease is checked again when it starts.
  await queue.add('calls', { v: 1, kind: 'calls', batchId: 'slow', producerId: 'p-slow', items: [call(0, 'sleep 3', 5)] }, { jobId: 'slow' });
  // Running in the slot, not only active in BullMQ: its lease check is behind it.
  await waitFor(() => runsIn(w.slots.get(s.slotId)!.containerId, 'sleep 3'), 10_000, 'the slow call to run in the slot');
  await queue.add('calls', { v: 1, kind: 'calls', batchId: 'after', producerId: 'p-after', items: [call(0, 'echo after >> /workspace/log', 1)] }, { jobId: 'after' });
  await waitFor(async () => (await queue.getJobState('after')) === 'active', 10_000, 'the second call to wait on the slot');
  await b.release(s); // no reset: the workspace stays for the check below
  expect((await results('p-slow'))[0]).toMatchObject({ success: true });
  expect((await results('p-after'))[0]).toMatchObject({ success: false, metadata: { code: 'LEASE_LOST' } });

  const again = await b.acquire();
  const [log] = await b.executeBatch([[again, 'bash', { command: 'cat /workspace/log 2>/dev/null; true' }]]);
  expect(log!.output).toBe(''); // neither refused call ever ran
  await queue.close();
});
