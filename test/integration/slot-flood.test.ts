import { afterEach, expect, it } from 'vitest';
import type { ExecutionResult } from '../../src/index.js';
import { SLOT_JOBS_LIMIT } from '../../src/worker/queue/slot-admission.js';
import { driver, runsIn } from '../../tools/testkit/docker.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/**
 * One busy slot cannot hold the BullMQ concurrency the worker's other slots need (slot-admission.ts):
 * a slot flooded with calls that wait behind one that blocks holds at most SLOT_JOBS_LIMIT jobs; the rest
 * of its calls are refused at once (INTERNAL, retryable, cause slot_queue_full), and a call for another
 * slot answers while the flooded slot's first call still runs. Before the limit, the flood held all of
 * the worker's concurrency (32) and the other slot's call waited for the blocking one to end.
 */
it('a slot flooded with slow calls leaves room: another slot answers while its first call still runs', async () => {
  h = harness();
  const w = await h.worker({ slots: 2, warmSpares: 0 });
  const b = await h.backend();
  const [busy, other] = [await b.acquire('busy'), await b.acquire('other')];
  const gate = '/tmp/slotq-flood-gate';
  const blocking = `while [ ! -e ${gate} ]; do sleep 0.1; done; echo released`;
  const flood = 40;
  const done: ExecutionResult[] = [];
  const calls = Array.from({ length: flood }, () => b.executeBatch([[busy, 'bash', { command: blocking }]], { timeoutS: 300 }).then(([r]) => void done.push(r!)));
  const container = w.slots.get(busy.slotId)!.containerId;
  await waitFor(() => runsIn(container, 'slotq-flood-gate'), 30_000, 'the first flooded call to start');
  try {
    let answer: ExecutionResult | undefined;
    const asked = b.executeBatch([[other, 'bash', { command: 'echo other' }]]).then(([r]) => void (answer = r));
    // The flooded slot's first call blocks until the gate opens, which happens only after this.
    await waitFor(() => answer !== undefined, 30_000, "the other slot's call to answer while the flooded slot's first call blocks");
    await asked;
    expect(answer).toMatchObject({ success: true, error: '' }); // before the limit: a failure at its deadline (starved)
    expect(answer!.output.trim()).toBe('other');
    expect(done.filter((r) => r.success)).toEqual([]);
    expect(await runsIn(container, 'slotq-flood-gate')).toBe(true);
    const refused = (): ExecutionResult[] => done.filter((r) => r.metadata['cause'] === 'slot_queue_full');
    await waitFor(() => refused().length === flood - SLOT_JOBS_LIMIT, 30_000, 'the calls beyond the slot limit to be refused');
    for (const r of refused()) expect(r.metadata).toMatchObject({ code: 'INTERNAL', retryable: true, cause: 'slot_queue_full' });
  } finally {
    await driver().exec(container, ['touch', gate], { timeoutMs: 10_000 }); // opened whatever happened, so nothing stays blocked
  }
  await Promise.all(calls);
  expect(done.filter((r) => r.success).map((r) => r.output.trim())).toEqual(Array.from({ length: SLOT_JOBS_LIMIT }, () => 'released'));
  await b.release(busy);
  await b.release(other);
});
