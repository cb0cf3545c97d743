import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { keysFor } from '../../src/shared/keys.js';
import { silentLogger } from '../../src/shared/logger.js';
import { connectRedis, scanKeys } from '../../src/shared/redis.js';
import type { CallsJob } from '../../src/shared/calls/schemas.js';
import { FetchProbes, leasePairs } from '../../src/worker/queue/fetch-probe.js';
import { ProbingWorker } from '../../src/worker/queue/probing-worker.js';
import { connectTestRedis, redisUrl, uniquePrefix, waitFor } from '../support/harness.js';

/** BullMQ's queue and worker with the fetch probe, on real Redis, with a processor that records what it was told. */
async function setup(concurrency: number) {
  const keys = keysFor(uniquePrefix());
  const redis = connectTestRedis();
  const conns: Redis[] = [redis];
  const conn = (): Redis => {
    const c = connectRedis(loadConfig({ redisUrl: redisUrl() }), { blocking: true, name: 'slotq-test-bull' });
    conns.push(c);
    return c;
  };
  const slot = (state: string, leaseId: string) => JSON.stringify({ slotId: 'x', workerId: 'w', containerId: 'c', state, trajectoryId: 't', owner: 'p', leaseId, leaseExpMs: '0', heldAtMs: '0' });
  await redis.hset(keys.slots, 's1', slot('held', 'L1'), 's2', slot('free', ''));
  await redis.hset(keys.worker('w'), 'epoch', 'E1');
  const probes = new FetchProbes(keys, 'w', () => 'E1', silentLogger());
  const seen: Array<{ id: string; valid: boolean[] | undefined; status?: string; run?: string | null }> = [];
  let gate: Promise<void> = Promise.resolve();
  let onSeen = (): void => undefined;
  const process = async (job: Job): Promise<void> => {
    const data = job.data as CallsJob;
    const probe = await probes.take(job.id!, leasePairs(data.items));
    seen.push({ id: job.id!, valid: probe?.valid, ...(probe ? { status: probe.status, run: await redis.hget(keys.job('w', job.id!), 'sq:run') } : {}) });
    onSeen();
    await gate;
  };
  // A blocking wait far longer than any test: a job is picked up only because something woke the worker.
  const worker = new ProbingWorker(keys.queueName('w'), process, { connection: conn(), prefix: keys.root, concurrency, drainDelay: 300 }, probes);
  const start = async (): Promise<void> => {
    void worker.run();
    await worker.waitUntilReady();
  };
  const queue = new Queue(keys.queueName('w'), { connection: conn(), prefix: keys.root });
  const add = (id: string, items: Array<[string, string]>) => {
    const data: CallsJob = { v: 1, kind: 'calls', batchId: 'b', producerId: 'p', items: items.map(([slotId, leaseId], index) => ({ index, executionId: `${id}-${index}`, slotId, leaseId, tool: 'bash', args: { command: 'true' }, timeoutS: 5 })) };
    return queue.add('calls', data, { jobId: id, removeOnComplete: true });
  };
  const marker = (): Promise<number> => redis.zcard(keys.queueKeys('w').marker);
  const hold = (): (() => void) => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    return open;
  };
  const close = async (): Promise<void> => {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const left = await scanKeys(redis, `${keys.root}:*`);
    if (left.length > 0) await redis.del(...left);
    for (const c of conns) c.disconnect();
  };
  return { start, add, seen, marker, hold, close, onSeen: (fn: () => void) => (onSeen = fn) };
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

describe('fetch probe', () => {
  it('hands the processor the lease answer made at pickup, and a worker idle on an empty queue still wakes for the next job', async () => {
    const t = await setup(8);
    cleanup = t.close;
    await t.start();
    await t.add('a', [['s1', 'L1'], ['s2', 'L2'], ['s1', 'L1'], ['s9', 'L1']]);
    await waitFor(() => t.seen.length === 1, 20_000, 'job a to be processed');
    // Only the first call of the one slot whose lease holds is marked started (call-fence.ts).
    expect(t.seen[0]).toEqual({ id: 'a', valid: [true, false, false], status: 'ok', run: ',0,' });
    // The queue is empty: the marker BullMQ set when it handed the job out is gone, so the worker blocks.
    await waitFor(async () => (await t.marker()) === 0, 20_000, 'the marker to be removed');
    await t.add('b', [['s1', 'stale']]);
    await waitFor(() => t.seen.length === 2, 20_000, 'job b, added while the worker waited, to be processed');
    expect(t.seen[1]).toEqual({ id: 'b', valid: [false], status: 'ok', run: ',' });
  });

  it('keeps the marker while jobs wait, so queued jobs are handed out up to the concurrency at once', async () => {
    const t = await setup(2);
    cleanup = t.close;
    const open = t.hold();
    for (const id of ['c1', 'c2', 'c3', 'c4']) await t.add(id, [['s1', 'L1']]);
    await t.start();
    // Both fetches happen while the first job is held: the second needs the marker the first left.
    await waitFor(() => t.seen.length === 2, 20_000, 'two jobs to run at once');
    open();
    await waitFor(() => t.seen.length === 4, 20_000, 'every queued job to be processed');
    expect(t.seen.map((s) => s.id)).toEqual(['c1', 'c2', 'c3', 'c4']);
    // Every job is handed out by a fetch with its probe (a completion does not fetch the next job); the
    // very first fetch on a connection may load BullMQ's script first and leave its probe unused.
    expect([undefined, [true]]).toContainEqual(t.seen[0]!.valid);
    expect(t.seen.slice(1).map((s) => s.valid)).toEqual([[true], [true], [true]]);
  });

  it('never leaves a job waiting when each is added the moment the previous one ran (its completion races the next pickup)', async () => {
    const t = await setup(4);
    cleanup = t.close;
    await t.start();
    const total = 300;
    t.onSeen(() => {
      if (t.seen.length < total) void t.add(`r${t.seen.length}`, [['s1', 'L1']]);
    });
    await t.add('r0', [['s1', 'L1']]);
    await waitFor(() => t.seen.length === total, 60_000, `all ${total} jobs to be processed (a lost wake-up leaves one waiting 300 s)`);
  });
});
