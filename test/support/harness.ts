import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { SlotBackend, SlotWorker, createLogger, type SlotBackendOptions, type SlotWorkerOptions } from '../../src/index.js';
import { loadConfig } from '../../src/shared/config.js';
import { randomId } from '../../src/shared/ids.js';
import { connectRedis } from '../../src/shared/redis.js';
import { rm } from 'node:fs/promises';
import { channelSubdir } from '../../src/worker/engine/container-spec.js';
import { containersOf, helperContainers, removeContainers } from '../../tools/testkit/docker.js';
import { describeLeaks, findLeaks, isClean, keysUnder, processesSince } from '../../tools/testkit/leaks.js';
import { waitUntil } from '../../tools/testkit/wait.js';

export { containersOf } from '../../tools/testkit/docker.js';

export const redisUrl = (): string => inject('redisUrl');
/** A connection to the suite's Redis as slotq makes it (a Cluster, TLS: SLOTQ_TEST_REDIS, see global-setup.ts). */
export const connectTestRedis = (name = 'slotq-test'): Redis => connectRedis(loadConfig({ redisUrl: redisUrl() }), { name });
export const uniquePrefix = (): string => `t${randomId(4)}`;
const log = createLogger({ level: process.env['SLOTQ_TEST_LOG_LEVEL'] ?? 'silent' });
/** How long close() lets leftovers go away by themselves (a killed worker's containers end a moment later). */
const SETTLE_MS = 5000;

export interface Harness {
  prefix: string;
  workers: SlotWorker[];
  backends: SlotBackend[];
  worker(opts?: SlotWorkerOptions): Promise<SlotWorker>;
  backend(opts?: SlotBackendOptions): Promise<SlotBackend>;
  redis(): Redis;
  /**
   * Stops backends (purge) and workers, then fails when the test left anything behind: slot containers
   * with its prefix, Redis keys under its prefix that would never expire, child processes started
   * (through tools/testkit) since harness() that still run, its workers' FIFO channel directories, or
   * helper fill containers that appeared since harness(). Leftovers are removed before it throws.
   */
  close(): Promise<void>;
}

/** A unique key prefix per test, real workers and backends on it, and a leak check on close. */
export function harness(): Harness {
  const prefix = uniquePrefix();
  const conns: Redis[] = [];
  const processes = processesSince();
  // Helper containers already there are another run's (a worker filling the helper volume): not this test's leak.
  const helpersBefore = helperContainers().catch(() => []);
  /** The FIFO channel directory of each worker this test started (each removes its own when it stops). */
  const channelDirs = (): string[] => h.workers.filter((w) => w.config.channel === 'fifo').map((w) => `${w.config.channelDir}/${channelSubdir(w.workerId)}`);
  const h: Harness = {
    prefix,
    workers: [],
    backends: [],
    async worker(opts = {}) {
      const w = new SlotWorker({ redisUrl: redisUrl(), prefix, slots: 2, warmSpares: 1, logger: log, ...opts });
      h.workers.push(w);
      await w.start();
      return w;
    },
    async backend(opts = {}) {
      const b = new SlotBackend({ redisUrl: redisUrl(), prefix, logger: log, ...opts });
      h.backends.push(b);
      await b.start();
      return b;
    },
    redis() {
      const r = connectTestRedis();
      conns.push(r);
      return r;
    },
    async close() {
      for (const b of h.backends) await b.stop({ purge: true });
      for (const w of h.workers) await w.stop();
      for (const r of conns) r.disconnect();
      const leaks = await findLeaks(redisUrl(), prefix, { settleMs: SETTLE_MS, persistentKeysOnly: true, processes, channelDirs, helpersBefore: await helpersBefore });
      if (isClean(leaks)) return;
      await cleanUp(prefix, processes, channelDirs());
      await removeContainers(leaks.helpers);
      throw new Error(`test with prefix ${prefix} leaked: ${describeLeaks(leaks)}`);
    },
  };
  return h;
}

/** Removes whatever a leaking test left, so the next test starts clean. */
async function cleanUp(prefix: string, processes: ReturnType<typeof processesSince>, channelDirs: readonly string[]): Promise<void> {
  for (const p of processes()) await p.kill();
  await removeContainers(await containersOf(prefix));
  for (const dir of channelDirs) await rm(dir, { recursive: true, force: true });
  const redis = connectTestRedis('slotq-test-cleanup');
  try {
    const keys = await keysUnder(redis, prefix);
    if (keys.length) await redis.unlink(...keys);
  } finally {
    redis.disconnect();
  }
}

/** Polls until fn returns true, or fails after timeoutMs. */
export function waitFor(fn: () => Promise<boolean> | boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  return waitUntil(fn, timeoutMs, what);
}
