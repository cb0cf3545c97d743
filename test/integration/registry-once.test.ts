import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { keysUnder } from '../../tools/testkit/leaks.js';
import { connectTestRedis, uniquePrefix } from '../support/harness.js';
import { comparable, registryState, runEveryScriptTwice } from '../support/registry-state.js';

/**
 * Every mutating registry script answers the same, and leaves the same state, when ioredis re-sends it
 * after a reconnect (it ran, its reply was lost, it runs again with the same keys and arguments).
 * Each case builds the same scene under two prefixes, runs the step once on one and twice (the re-send,
 * at the wire) on the other, and compares the answers and everything under the prefixes.
 */
const W = 'w1';
const IMG = 'img-a:1';
const IMG2 = 'img-b:1';
const conns: Redis[] = [];
const prefixes: string[] = [];

afterEach(async () => {
  const redis = conns[0];
  for (const p of prefixes.splice(0)) {
    const keys = redis ? await keysUnder(redis, p) : [];
    if (keys.length) await redis!.unlink(...keys);
  }
  for (const c of conns.splice(0)) c.disconnect();
});

function registry(prefix: string, twice = false): Registry {
  const redis = connectTestRedis(twice ? 'slotq-test-twice' : 'slotq-test');
  conns.push(redis);
  if (twice) runEveryScriptTwice(redis);
  return new Registry(redis, keysFor(prefix));
}

const worker = async (r: Registry, capacity?: number): Promise<void> => {
  await r.registerWorker(W, 60_000, { state: 'running' });
  if (capacity !== undefined) await r.publishImages(W, [], capacity);
};
const lease = { owner: 'p1', ttlMs: 60_000, waiterTtlMs: 60_000 };

interface Case {
  name: string;
  scene: (r: Registry) => Promise<Record<string, string>>;
  step: (r: Registry, s: Record<string, string>) => Promise<unknown>;
  /** The answer of one run, so a case cannot pass by doing nothing twice. */
  once: unknown;
}

const cases: Case[] = [
  {
    name: 'ADD_SLOT: a new slot goes to the waiter, once',
    scene: async (r) => {
      await worker(r);
      await r.acquire({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', ...lease });
      return {};
    },
    step: (r) => r.addSlot('s1', W, 'c1'),
    once: 'granted',
  },
  {
    name: 'RETIRE_IMAGE_SLOT: the capacity comes back once, and the request that waited for it is named',
    scene: async (r) => {
      await worker(r, 0);
      await r.addSlot('i1', W, 'c1', IMG);
      const got = await r.acquireImage({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', image: IMG, ...lease });
      if (!('slot' in got)) throw new Error('scene: no warm slot');
      await r.release('i1', 'la', false);
      await r.acquireImage({ trajectoryId: 'tb', leaseId: 'lb', waiterId: 'wb', image: IMG2, ...lease });
      return {};
    },
    step: (r) => r.retireImageSlot(W, 'i1', 0),
    once: { next: 'provision', image: IMG2, waiterId: 'wb' },
  },
  {
    name: 'FAIL_IMAGE_WAITER: only the failed waiter leaves, and the capacity comes back once',
    scene: async (r) => {
      await worker(r, 1);
      await r.acquireImage({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', image: IMG, ...lease });
      await r.acquireImage({ trajectoryId: 'tb', leaseId: 'lb', waiterId: 'wb', image: IMG, ...lease });
      return {};
    },
    step: (r) => r.failImageWaiter(W, IMG, 'wa'),
    once: { producerId: 'p1', waiterId: 'wa', next: { image: IMG, waiterId: 'wb' } },
  },
  {
    name: 'TAKE_RESERVATION: the reservation is taken, and no capacity beyond it',
    scene: async (r) => {
      await worker(r, 2);
      await r.acquireImage({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', image: IMG, ...lease });
      return {};
    },
    step: (r) => r.takeReservation(W, 'wa'),
    once: true,
  },
  {
    name: 'ACQUIRE: a waiter is queued once',
    scene: async (r) => {
      await worker(r);
      return {};
    },
    step: (r) => r.acquire({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', ...lease }),
    once: null,
  },
  {
    name: 'ACQUIRE_IMAGE: a waiter is queued, and capacity reserved, once',
    scene: async (r) => {
      await worker(r, 2);
      return {};
    },
    step: (r) => r.acquireImage({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', image: IMG, ...lease }),
    once: { wait: W },
  },
  {
    name: 'RELEASE: the slot goes to the next waiter, and the release is not "lost"',
    scene: async (r) => {
      await worker(r);
      await r.addSlot('s1', W, 'c1');
      await r.acquire({ trajectoryId: 'ta', leaseId: 'la', ...lease });
      await r.acquire({ trajectoryId: 'tb', leaseId: 'lb', waiterId: 'wb', ...lease });
      return {};
    },
    step: (r) => r.release('s1', 'la', false),
    once: 'granted',
  },
  {
    name: 'CANCEL_WAITER: a waiter still queued says so',
    scene: async (r) => {
      await worker(r);
      await r.acquire({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', ...lease });
      return {};
    },
    step: (r) => r.cancelWaiter('wa'),
    once: true,
  },
  {
    name: 'REAP_LEASES: the expired slot is named to its worker',
    scene: async (r) => {
      await worker(r);
      await r.addSlot('s1', W, 'c1');
      await r.acquire({ trajectoryId: 'ta', leaseId: 'la', ...lease, ttlMs: 1 });
      const expired = Date.now() + 2;
      while (Date.now() < expired) await new Promise((ok) => setImmediate(ok));
      return {};
    },
    step: (r) => r.reapLeases(W),
    once: ['s1'],
  },
  {
    name: 'CLAIM_PENDING: the request the capacity takes is named',
    scene: async (r) => {
      await worker(r, 0);
      await r.acquireImage({ trajectoryId: 'ta', leaseId: 'la', waiterId: 'wa', image: IMG, ...lease });
      await r.publishImages(W, [], 1);
      return {};
    },
    step: (r) => r.claimPending(W, 30_000),
    once: [{ image: IMG, waiterId: 'wa' }],
  },
  {
    name: 'TRIM_IMAGE_SLOT: a spare warm slot is taken for retiring',
    scene: async (r) => {
      await worker(r, 1);
      await r.addSlot('i1', W, 'c1', IMG);
      return {};
    },
    step: (r) => r.trimImageSlot(W, 'i1', 0),
    once: true,
  },
  // Idempotent by themselves (no once key): they set what their arguments say.
  {
    name: 'RENEW: the lease is extended, the same way',
    scene: async (r) => {
      await worker(r);
      await r.addSlot('s1', W, 'c1');
      await r.acquire({ trajectoryId: 'ta', leaseId: 'la', ...lease });
      return {};
    },
    step: (r) => r.renew(60_000, [['s1', 'la'], ['s2', 'lx']]),
    once: ['s2'],
  },
  {
    name: 'PUBLISH_IMAGES and DRAIN_WORKER: the same images, capacity and draining state',
    scene: async (r) => {
      await worker(r, 1);
      await r.addSlot('s1', W, 'c1');
      return {};
    },
    step: async (r) => {
      await r.publishImages(W, [IMG, IMG2], 3);
      await r.drainWorker(W);
      return 'done';
    },
    once: 'done',
  },
  {
    name: 'UNREGISTER_WORKER: the worker and its slots are gone',
    scene: async (r) => {
      await worker(r, 1);
      await r.addSlot('s1', W, 'c1');
      return {};
    },
    step: async (r) => {
      await r.unregisterWorker(W);
      return 'done';
    },
    once: 'done',
  },
];

describe('registry scripts re-sent after a reconnect', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const [p1, p2] = [uniquePrefix(), uniquePrefix()];
      prefixes.push(p1, p2);
      const [one, two] = [registry(p1), registry(p2)];
      const twice = registry(p2, true);
      const once = await c.step(one, await c.scene(one));
      expect(comparable(once)).toEqual(comparable(c.once));
      const again = await c.step(twice, await c.scene(two));
      expect(comparable(again)).toEqual(comparable(once));
      expect(await registryState(two.redis, p2)).toEqual(await registryState(one.redis, p1));
    });
  }
});
