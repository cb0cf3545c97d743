import { afterEach, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

describe('producer memory stays bounded as workers come and go', () => {
  it('closes the queue of each worker that left, and keeps the live ones', async () => {
    h = harness();
    const b = await h.backend();
    const stay = await h.worker({ slots: 1 });
    for (let round = 0; round < 3; round++) {
      const w = await h.worker({ slots: 1 });
      // Two trajectories: one slot on each worker (the one with the most free slots is picked first).
      const slots = [await b.acquire(`r${round}-a`), await b.acquire(`r${round}-b`)];
      expect(new Set(slots.map((s) => s.workerId))).toEqual(new Set([stay.workerId, w.workerId]));
      const results = await b.executeBatch(slots.map((s) => [s, 'bash', { command: 'echo hi' }] as const));
      expect(results.map((r) => r.output)).toEqual(['hi\n', 'hi\n']);
      for (const s of slots) await b.release(s);
      await w.stop();
      h.workers.splice(h.workers.indexOf(w), 1);
    }
    // One queue for the worker that stayed; the three that left are closed (before the fix: 4).
    await waitFor(() => b.openQueues === 1, 30_000, 'the queues of the workers that left to be closed');
    const [r] = await b.executeBatch([[await b.acquire('after'), 'bash', { command: 'echo still' }]]);
    expect(r!.output).toBe('still\n');
    expect(await h.redis().exists(keysFor(h.prefix).worker(stay.workerId))).toBe(1);
    expect(b.waitingAcquires).toBe(0);
  });
});
