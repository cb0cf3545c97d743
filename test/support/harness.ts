import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { SlotBackend, SlotWorker, createLogger, type SlotBackendOptions, type SlotWorkerOptions } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import { LABELS } from '../../src/shared/keys.js';

export const redisUrl = (): string => inject('redisUrl');
export const uniquePrefix = (): string => `t${randomId(4)}`;
const log = createLogger({ level: process.env['SLOTQ_TEST_LOG_LEVEL'] ?? 'silent' });

export interface Harness {
  prefix: string;
  workers: SlotWorker[];
  backends: SlotBackend[];
  worker(opts?: SlotWorkerOptions): Promise<SlotWorker>;
  backend(opts?: SlotBackendOptions): Promise<SlotBackend>;
  redis(): Redis;
  close(): Promise<void>;
}

/** A unique key prefix per test, real workers and backends on it, and a leak check on close. */
export function harness(): Harness {
  const prefix = uniquePrefix();
  const conns: Redis[] = [];
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
      const r = new Redis(redisUrl());
      conns.push(r);
      return r;
    },
    async close() {
      for (const b of h.backends) await b.stop({ purge: true });
      for (const w of h.workers) await w.stop();
      for (const r of conns) r.disconnect();
      const left = await containersOf(prefix);
      if (left.length) throw new Error(`leaked ${left.length} container(s) with prefix ${prefix}`);
    },
  };
  return h;
}

export async function containersOf(prefix: string, workerId?: string): Promise<string[]> {
  const filters = [`${LABELS.prefix}=${prefix}`, ...(workerId ? [`${LABELS.worker}=${workerId}`] : [])];
  const list = await new Docker().listContainers({ all: true, filters: { label: filters } });
  return list.map((c) => c.Id);
}

/** Polls until fn returns true, or fails after timeoutMs. */
export async function waitFor(fn: () => Promise<boolean> | boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
