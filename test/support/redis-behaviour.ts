import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { SlotBackend, SlotWorker, createLogger, type SlotBackendOptions, type SlotWorkerOptions } from '../../src/index.js';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { connectRedis } from '../../src/shared/redis.js';
import { loadConfig, type SlotqOptions } from '../../src/shared/config.js';
import { containersOf, removeContainers, runsIn } from '../../tools/testkit/docker.js';
import { startWorkerProcess, type ManagedProcess } from '../../tools/testkit/processes.js';
import { uniquePrefix, waitFor } from './harness.js';
import type { LocalRedis } from './redis-servers.js';

const log = createLogger({ level: process.env['SLOTQ_TEST_LOG_LEVEL'] ?? 'silent' });

/**
 * The integration behaviour that depends on Redis (affinity, FIFO waiters and grants, batch order,
 * release with reset, a worker's death), run against a Redis this file started: a Cluster, or TLS with
 * a password. Call inside a describe().
 */
export function redisBehaviour(start: () => Promise<LocalRedis>, redisOptions: (r: LocalRedis) => SlotqOptions): void {
  let target: LocalRedis;
  let prefix = '';
  const saved: Record<string, string | undefined> = {};
  const workers: SlotWorker[] = [];
  const backends: SlotBackend[] = [];
  const procs: ManagedProcess[] = [];
  const opts = (): SlotqOptions => ({ redisUrl: target.url, prefix, ...redisOptions(target) });
  const worker = async (o: SlotWorkerOptions = {}): Promise<SlotWorker> => {
    const w = new SlotWorker({ ...opts(), slots: 2, warmSpares: 1, logger: log, ...o });
    workers.push(w);
    await w.start();
    return w;
  };
  const backend = async (o: SlotBackendOptions = {}): Promise<SlotBackend> => {
    const b = new SlotBackend({ ...opts(), logger: log, ...o });
    backends.push(b);
    await b.start();
    return b;
  };
  /** Waiters queued in the registry (for ordering acquires by event, not by sleeping). */
  const waiting = async (): Promise<number> => {
    const redis = connectRedis(loadConfig(opts()), { name: 'slotq-test' });
    try {
      return await redis.llen(keysFor(prefix).waiters);
    } finally {
      redis.disconnect();
    }
  };

  beforeAll(async () => {
    target = await start();
    // In-process workers read these like a deployed worker would (the user's switch is the env).
    // Both switches, so the suite's own mode (SLOTQ_TEST_REDIS) does not leak into this Redis.
    for (const k of ['SLOTQ_REDIS_CLUSTER', 'SLOTQ_REDIS_TLS_CA']) {
      saved[k] = process.env[k];
      const v = target.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }, 120_000);
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await target?.stop();
  });
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.stop({ purge: true });
    for (const w of workers.splice(0)) await w.stop();
    for (const p of procs.splice(0)) await p.stop(5000, 'SIGKILL');
    await removeContainers(await containersOf(prefix));
  });

  it('acquire: affinity scoped to its producer, FIFO waiters served by grants', async () => {
    prefix = uniquePrefix();
    await worker({ slots: 2 });
    const [b1, b2] = [await backend(), await backend()];
    const a = await b1.acquire('a');
    const b = await b1.acquire('b');
    expect((await b1.acquire('a')).slotId).toBe(a.slotId); // the trajectory keeps its slot
    const c = b1.acquire('c');
    await waitFor(async () => (await waiting()) === 1, 10_000, 'c to queue');
    const d = b2.acquire('a'); // another producer's 'a' is another trajectory: it waits for a slot of its own
    await waitFor(async () => (await waiting()) === 2, 10_000, "b2's 'a' to queue");
    await b1.release(a);
    expect((await c).slotId).toBe(a.slotId); // first come, first served
    await b1.release(b, { resetWorkspace: true });
    const mine = await d;
    expect(mine.slotId).toBe(b.slotId);
    expect(mine.leaseId).not.toBe(a.leaseId);
    await expect(b1.acquire('e', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'NO_SLOT' });
    expect(await waiting()).toBe(0);
  });

  it('executeBatch answers in request order across slots; release with reset gives a pristine workspace', async () => {
    prefix = uniquePrefix();
    await worker({ slots: 2 });
    const b = await backend();
    const [s1, s2] = [await b.acquire('t1'), await b.acquire('t2')];
    const results = await b.executeBatch([
      [s1, 'bash', { command: 'sleep 0.3; echo one' }],
      [s2, 'write_file', { path: 'f.txt', content: 'two' }],
      [s1, 'bash', { command: 'echo three' }],
      [s2, 'read_file', { path: 'f.txt' }],
    ]);
    expect(results.map((r) => r.output)).toEqual(['one\n', expect.any(String), 'three\n', 'two']);
    expect(results.every((r) => r.success)).toBe(true);
    await b.release(s2, { resetWorkspace: true });
    await b.release(s1);
    const again = await b.acquire('t3');
    const fresh = again.slotId === s2.slotId ? again : await b.acquire('t4');
    expect(fresh.slotId).toBe(s2.slotId);
    const [read] = await b.executeBatch([[fresh, 'read_file', { path: 'f.txt' }]]);
    expect(read!.metadata.code).toBe('NOT_FOUND');
  });

  it('no slot is lost: an expired lease and a release whose reset job never came both end in a pristine free slot', async () => {
    prefix = uniquePrefix();
    const w = await worker({ slots: 1, warmSpares: 0, workerLostMs: 2000 });
    const b = await backend();
    const redis = connectRedis(loadConfig(opts()), { name: 'slotq-test' });
    try {
      const registry = new Registry(redis, keysFor(prefix));
      const state = async (id: string): Promise<string | null | undefined> => (await registry.slotStates([id])).get(id);
      const s = await b.acquire('stranded');
      await b.executeBatch([[s, 'write_file', { path: 'left.txt', content: 'x' }]]);
      const before = w.slots.get(s.slotId)!.containerId;
      expect(await registry.release(s.slotId, s.leaseId, true)).toBe('resetting'); // and no reset job
      await waitFor(async () => (await state(s.slotId)) === 'free', 30_000, 'the stranded slot to be reset');
      expect(w.slots.get(s.slotId)!.containerId).not.toBe(before);
      // A producer that took the slot for a second and died: nobody renews or releases it.
      const held = await registry.acquire({ trajectoryId: 'dies', owner: 'ghost', leaseId: 'ghost-lease', ttlMs: 1000 });
      expect(held?.['slotId']).toBe(s.slotId);
      await waitFor(async () => (await state(s.slotId)) === 'free', 30_000, 'the expired lease to be reaped and the slot reset');
      const [ls] = await b.executeBatch([[await b.acquire('next'), 'bash', { command: 'ls -A /workspace | wc -l' }]]);
      expect(ls!.output.trim()).toBe('0');
    } finally {
      redis.disconnect();
    }
  });

  it('a worker killed with SIGKILL: its call that had started returns WORKER_LOST, outcome unknown (not retryable)', async () => {
    prefix = uniquePrefix();
    const env = { REDIS_URL: target.url, SLOTQ_PREFIX: prefix, SLOTQ_SLOTS: '1', SLOTQ_WORKER_LOST_MS: '3000', SLOTQ_WARM_SPARES: '0', ...target.env };
    const proc = await startWorkerProcess('slotq worker (cluster/tls)', env);
    procs.push(proc);
    const b = await backend({ workerLostMs: 3000 });
    const slot = await b.acquire('doomed');
    const batch = b.executeBatch([[slot, 'bash', { command: 'sleep 60' }]]);
    const [id] = await containersOf(prefix);
    await waitFor(() => runsIn(id!, 'sleep 60'), 20_000, 'the call to start');
    await proc.stop(5000, 'SIGKILL');
    const [r] = await batch;
    expect(r!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' }); // it had started: it may have run
    await b.release(slot);
  });
}
