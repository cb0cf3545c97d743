import { afterEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { SlotBackend, SlotWorker, createLogger } from '../../src/index.js';
import { containersOf, harness, redisUrl, uniquePrefix, waitFor, type Harness } from '../support/harness.js';
import { killHard, startWorkerProcess } from '../support/processes.js';
import { driver, killContainer, runsIn } from '../../tools/testkit/docker.js';
import { killContainerMidCall } from '../support/container-kill.js';
import { startSlotHolder } from '../../tools/testkit/processes.js';
import { OwnRedis } from '../../tools/chaos/own-redis.js';

let h: Harness | undefined;
const children: ChildProcess[] = [];
let redis: OwnRedis | undefined;
afterEach(async () => {
  for (const c of children.splice(0)) await killHard(c);
  await h?.close();
  h = undefined;
  await redis?.remove();
  redis = undefined;
});

describe('faults survived', () => {
  it('a container killed mid-call gives SLOT_BROKEN, then a plain "workspace gone", then works on a new container', async () => {
    h = harness();
    const w = await h.worker({ slots: 1 });
    const b = await h.backend();
    const s = await b.acquire();
    const { told, after } = await killContainerMidCall(b, w, s, 'ls; echo ok');
    expect(told.error).toMatch(/workspace .* is gone/);
    expect(after).toMatchObject({ success: true, output: 'ok\n' });
  });

  it('containers killed while no call runs are replaced at once: the holder is told once, a free slot\'s next holder never sees it', async () => {
    h = harness();
    const w = await h.worker({ slots: 2 });
    const b = await h.backend();
    const held = await b.acquire('held');
    await b.executeBatch([[held, 'write_file', { path: 'before.txt', content: 'x' }]]);
    const freeSlotId = [...w.slots.keys()].find((id) => id !== held.slotId)!;
    const dead = [...w.slots.values()].map((s) => s.containerId);
    for (const id of dead) await killContainer(id);
    // No call is made: the worker sees the sessions end and gives both slots new containers by itself.
    await waitFor(() => [...w.slots.values()].every((s) => !dead.includes(s.containerId)), 30_000, 'both slots to get new containers');
    const next = await b.acquire('next');
    expect(next.slotId).toBe(freeSlotId);
    const [fresh] = await b.executeBatch([[next, 'bash', { command: 'echo ok' }]]);
    expect(fresh, JSON.stringify(fresh)).toMatchObject({ success: true, output: 'ok\n' });
    const [told, after] = await b.executeBatch([
      [held, 'bash', { command: 'echo hi' }],
      [held, 'bash', { command: 'ls; echo ok' }],
    ]);
    expect(told!.metadata).toMatchObject({ code: 'SLOT_BROKEN', workspaceLost: true, retryable: true });
    expect(after).toMatchObject({ success: true, output: 'ok\n' });
  });

  it('a worker killed with SIGKILL: calls that had started return WORKER_LOST with outcome unknown (not retryable: they may have run), its slots are not handed out, its containers go away', async () => {
    const prefix = uniquePrefix();
    const env = { REDIS_URL: redisUrl(), SLOTQ_PREFIX: prefix, SLOTQ_SLOTS: '2', SLOTQ_WORKER_LOST_MS: '3000', SLOTQ_WARM_SPARES: '0' };
    const child = await startWorkerProcess(env);
    children.push(child);
    const b = new SlotBackend({ redisUrl: redisUrl(), prefix, workerLostMs: 3000 });
    await b.start();
    try {
      const [s1, s2] = [await b.acquire('a'), await b.acquire('b')];
      const batch = b.executeBatch([
        [s1, 'bash', { command: 'sleep 60' }],
        [s2, 'bash', { command: 'sleep 60' }],
      ]);
      const ids = await containersOf(prefix);
      await waitFor(() => runsIn(ids[0]!, 'sleep 60'), 20_000, 'calls to start');
      await killHard(child);
      const results = await batch;
      for (const r of results) expect(r.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' });
      await expect(b.acquire('c', { timeoutMs: 500 })).rejects.toMatchObject({ code: 'NO_SLOT' });
      // Orphaned containers end themselves (their executor saw EOF), without any worker coming back.
      await waitFor(async () => (await containersOf(prefix)).length === 0, 40_000, 'orphaned containers to end');
    } finally {
      await b.stop({ purge: true });
    }
  });

  it('a producer killed while holding a slot: the lease expires and the slot comes back reset', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const holder = await startSlotHolder('producer (to be killed)', 1, { REDIS_URL: redisUrl(), SLOTQ_PREFIX: h.prefix, SLOTQ_LEASE_TTL_MS: '2000' });
    const child = holder.child;
    children.push(child);
    await killHard(child);
    const b = await h.backend();
    const s = await b.acquire('next', { timeoutMs: 30_000 });
    const [r] = await b.executeBatch([[s, 'bash', { command: 'ls -A' }]]);
    expect(r).toMatchObject({ success: true, output: '' });
  });

  it('Redis restarted without persistence: processes reconnect, a call in flight gets a typed result the ledger in its slot bears out (ran once, or never when retryable), work goes on', async () => {
    // A Redis of its own (it restarts it), plain standalone even when the suite runs on a Cluster or TLS.
    redis = await OwnRedis.start('faults-test');
    const url = redis.url;
    const prefix = uniquePrefix();
    const log = createLogger({ level: 'silent' });
    const w = new SlotWorker({ redisUrl: url, redisCluster: false, prefix, slots: 2, warmSpares: 0, workerLostMs: 3000, logger: log });
    const b = new SlotBackend({ redisUrl: url, redisCluster: false, prefix, workerLostMs: 3000, logger: log });
    await w.start();
    await b.start();
    try {
      const s = await b.acquire('before');
      // Each run of the call appends a line to a ledger in its slot; the slot's ledger, read at the end, says how often it ran.
      const inFlight = b.executeBatch([[s, 'bash', { command: 'echo ran >> /workspace/ledger; sleep 2; echo done' }]]);
      let ranIn: string | undefined;
      const started = async (): Promise<boolean> => {
        for (const id of await containersOf(prefix)) if (await runsIn(id, 'sleep 2')) return (ranIn = id), true;
        return false;
      };
      await waitFor(started, 20_000, 'the call to start');
      await redis.restart();
      const [r] = await inFlight;
      let ok = false;
      await waitFor(async () => {
        const slot = await b.acquire(`after-${Date.now()}`, { timeoutMs: 1000 }).catch(() => undefined);
        if (!slot) return false;
        const [res] = await b.executeBatch([[slot, 'bash', { command: 'echo ok' }]]);
        ok = res?.output === 'ok\n';
        return ok;
      }, 60_000, 'work to go on after the restart');
      expect(ok).toBe(true);
      // Read after work went on, so a re-run after the reconnect would have had its chance to show.
      const ledger = await driver().exec(ranIn!, ['sh', '-c', 'cat /workspace/ledger 2>/dev/null; true'], { timeoutMs: 10_000 });
      const runs = ledger.stdout.toString().split('\n').filter((line) => line === 'ran').length;
      if (r!.success) {
        expect(r!.output).toBe('done\n');
        expect(runs, 'a call answered with its result ran exactly once').toBe(1);
      } else if (r!.metadata.retryable) {
        expect(runs, `a call answered retryable (${String(r!.metadata.code)}) never ran`).toBe(0);
      } else {
        // It may have run: here it had (it was seen running), and it must not have run again.
        expect(r!.metadata, r!.error).toMatchObject({ outcome: 'unknown' });
        expect(runs, 'a call answered "outcome unknown" that was seen running ran once, never again').toBe(1);
      }
    } finally {
      await b.stop({ purge: true });
      await w.stop();
    }
    expect(await containersOf(prefix)).toEqual([]);
  });
});
