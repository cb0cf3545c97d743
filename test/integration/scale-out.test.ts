import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { startCliWorker, type CliWorker } from '../support/cli-worker.js';
import { containersOf, harness, redisUrl, waitFor, type Harness } from '../support/harness.js';
import { removeContainers } from '../../tools/testkit/docker.js';

let h: Harness;
let procs: CliWorker[] = [];

const spawnWorker = async (slots: number): Promise<CliWorker> => {
  const w = await startCliWorker({ redisUrl: redisUrl(), prefix: h.prefix, slots });
  procs.push(w);
  return w;
};

afterEach(async () => {
  const codes = await Promise.all(procs.map((p) => p.stop('SIGTERM')));
  procs = [];
  if (codes.some((c) => c !== 0)) {
    // A worker that had to be killed leaves containers behind: clear them so later tests start clean.
    await removeContainers(await containersOf(h.prefix));
  }
  await h?.close();
});

/** One call, retried on a new slot when its worker went away (WORKER_LOST is retryable); any other failure is returned. */
async function callWithRetry(b: SlotBackend, trajectoryId: string, command: string, onSlot: (s: Slot, retries: number) => void = () => undefined): Promise<{ result: ExecutionResult; retries: number }> {
  for (let retries = 0; ; retries++) {
    const slot = await b.acquire(trajectoryId);
    onSlot(slot, retries);
    const [result] = await b.executeBatch([[slot, 'bash', { command }]]);
    if (result!.success || result!.metadata.code !== 'WORKER_LOST' || retries >= 3) return { result: result!, retries };
    expect(result!.metadata.retryable).toBe(true);
    await b.release(slot); // the lease on the lost worker is gone; acquire again lands on a live worker
  }
}

/**
 * Each trajectory makes `rounds` calls holding its slot (retrying WORKER_LOST on a new slot), checks every
 * result, then releases. `done` grows as calls succeed; `leasedAgain` has the worker of every new lease taken
 * after a WORKER_LOST.
 */
function runLoad(b: SlotBackend, trajectories: string[], rounds: number): { done: string[]; leasedAgain: string[]; finished: Promise<void> } {
  const done: string[] = [];
  const leasedAgain: string[] = [];
  const loops = trajectories.map(async (t) => {
    for (let r = 0; r < rounds; r++) {
      const { result } = await callWithRetry(b, t, `sleep 0.05; echo ${t}-${r}`, (slot, n) => n > 0 && leasedAgain.push(slot.workerId));
      expect(result.success, JSON.stringify(result)).toBe(true);
      expect(result.output).toBe(`${t}-${r}\n`);
      done.push(`${t}-${r}`);
    }
    await b.release(await b.acquire(t));
  });
  return { done, leasedAgain, finished: Promise.all(loops).then(() => undefined) };
}

describe('scaling out: workers in separate processes share one Redis', () => {
  it('a worker that joins adds its slots without a producer restart; 64 trajectories are served correctly across both', async () => {
    h = harness();
    const a = await spawnWorker(3);
    const b = await h.backend();
    const early = await b.acquire('early');
    expect(early.workerId).toBe(a.workerId);

    const w2 = await spawnWorker(3); // the producer keeps running: no restart, no reconfiguration
    // The registry hands out the worker with the most free slots: A has 2 free now, the new one 3.
    const late = await b.acquire('late');
    expect(late.workerId).toBe(w2.workerId);
    const spread = await Promise.all(['x1', 'x2', 'x3', 'x4'].map((t) => b.acquire(t)));
    const perWorker = (slots: Slot[], id: string): number => slots.filter((s) => s.workerId === id).length;
    expect([perWorker([early, late, ...spread], a.workerId), perWorker([early, late, ...spread], w2.workerId)]).toEqual([3, 3]);
    for (const s of [early, late, ...spread]) await b.release(s);

    const runs = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const slot = await b.acquire(`traj-${i}`);
        const res = await b.executeBatch([
          [slot, 'write_file', { path: `t${i}/n.txt`, content: String(i) }],
          [slot, 'bash', { command: `echo $(( $(cat t${i}/n.txt) * 7 ))` }],
          [slot, 'bash_stateful', { command: `X=${i}; echo "x=$X"` }],
          [slot, 'read_file', { path: `t${i}/n.txt` }],
        ]);
        await b.release(slot);
        return { i, workerId: slot.workerId, res };
      }),
    );
    for (const { i, res } of runs) {
      expect(res.map((r) => r.success), `trajectory ${i}: ${JSON.stringify(res)}`).toEqual([true, true, true, true]);
      expect(res.slice(1).map((r) => r.output)).toEqual([`${i * 7}\n`, `x=${i}\n`, String(i)]);
    }
    const served = new Map<string, number>();
    for (const r of runs) served.set(r.workerId, (served.get(r.workerId) ?? 0) + 1);
    expect([...served.keys()].sort()).toEqual([a.workerId, w2.workerId].sort());
    expect(Math.min(...served.values())).toBeGreaterThan(0);
  }, 180_000);

  it('draining a worker (SIGTERM) under load loses no call: in-flight calls finish, the rest get WORKER_LOST and succeed on a retry', async () => {
    h = harness();
    const [a, other] = [await spawnWorker(3), await spawnWorker(3)];
    const b = await h.backend();
    const registry = new Registry(h.redis(), keysFor(h.prefix));
    const held = await Promise.all(Array.from({ length: 6 }, (_, i) => b.acquire(`t${i}`)));
    expect(held.filter((s) => s.workerId === a.workerId)).toHaveLength(3);

    // A long call on A that is running when A is told to stop: it must finish, not be cut off.
    const longTraj = held.find((s) => s.workerId === a.workerId)!.trajectoryId;
    let signalled = false;
    const long = b.executeBatch([[await b.acquire(longTraj), 'bash', { command: 'sleep 6; echo finished' }]]).then(([r]) => ({ r: r!, afterSignal: signalled }));
    const queueA = new Queue(keysFor(h.prefix).queueName(a.workerId), { connection: h.redis(), prefix: keysFor(h.prefix).root });
    await waitFor(async () => (await queueA.getActiveCount()) > 0, 20_000, 'the long call to be running on A');
    await queueA.close();

    // Every other trajectory runs ROUNDS calls, holding its slot, retrying WORKER_LOST on a new slot.
    const ROUNDS = 30;
    const load = runLoad(b, held.filter((s) => s.trajectoryId !== longTraj).map((s) => s.trajectoryId), ROUNDS);
    const done = load.done;
    await waitFor(() => done.length >= 10, 30_000, 'the load to get going');
    signalled = true;
    const exit = a.stop('SIGTERM');
    await waitFor(async () => (await registry.workerInfo(a.workerId))['state'] !== 'up', 10_000, 'A to start draining');

    await load.finished;
    const { r: longResult, afterSignal } = await long;
    expect(longResult.success, JSON.stringify(longResult)).toBe(true);
    expect(longResult.output).toBe('finished\n');
    expect(afterSignal).toBe(true);
    expect(done).toHaveLength(5 * ROUNDS);
    expect(await exit).toBe(0);
    // A's trajectories were cut off mid-run (their calls after the signal got WORKER_LOST) and went on on the
    // other worker; a retry only follows a WORKER_LOST, i.e. a drain that had begun: none of those leases is on A.
    expect(load.leasedAgain.length).toBeGreaterThan(0);
    expect(load.leasedAgain.every((w) => w === other.workerId), `new leases after WORKER_LOST: ${load.leasedAgain.join(',')}`).toBe(true);
    expect(await registry.listWorkers()).toEqual([other.workerId]);
    expect(await containersOf(h.prefix, a.workerId)).toEqual([]);
  }, 180_000);
});
