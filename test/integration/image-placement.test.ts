import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { SlotqError } from '../../src/index.js';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { imageAllowed } from '../../src/worker/images/image-options.js';
import { keysUnder } from '../../tools/testkit/leaks.js';
import { connectTestRedis, harness, uniquePrefix, waitFor, type Harness } from '../support/harness.js';

/**
 * Placement honours each worker's SLOTQ_IMAGES: a reservation, a request waiting for capacity and an
 * eviction only ever land an image on a worker that allows it. First the registry alone (real Redis,
 * workers as their registry entries), then real workers.
 */
const lease = { owner: 'p1', ttlMs: 60_000, waiterTtlMs: 60_000 };

describe('the registry places an image only on a worker whose SLOTQ_IMAGES allow it', () => {
  let redis: Redis | undefined;
  let prefix = '';
  afterEach(async () => {
    const keys = redis ? await keysUnder(redis, prefix) : [];
    if (keys.length) await redis!.unlink(...keys);
    redis?.disconnect();
  });

  async function registry(): Promise<Registry> {
    prefix = uniquePrefix();
    redis = connectTestRedis();
    const r = new Registry(redis, keysFor(prefix));
    // wa allows only a:1 (and has more room); wb allows a glob of b images.
    for (const [id, capacity, allow] of [['wa', 3, ['a:1']], ['wb', 1, ['reg.io/b-?:*']]] as const) {
      await r.registerWorker(id, 60_000, { state: 'up' });
      await r.publishImages(id, [], capacity, false, allow);
    }
    return r;
  }

  it('reserves on the allowing worker, never evicts or claims for an image the worker refuses', async () => {
    const r = await registry();
    await r.addSlot('a-warm', 'wa', 'c1', 'a:1'); // a warm container on wa an eviction could take
    expect(await r.acquireImage({ trajectoryId: 't1', leaseId: 'l1', waiterId: 'w1', image: 'reg.io/b-1:x', ...lease })).toEqual({ wait: 'wb' });
    // wb is full: the next b request waits for capacity; wa's room and warm container are not for it.
    expect(await r.acquireImage({ trajectoryId: 't2', leaseId: 'l2', waiterId: 'w2', image: 'reg.io/b-1:x', ...lease })).toEqual({ wait: '' });
    expect(await r.claimPending('wa', 30_000)).toEqual([]);
    expect((await r.slotStates(['a-warm'])).get('a-warm')).toBe('free');
    // The glob is a glob: '.' is a dot, '?' one character.
    expect(await r.acquireImage({ trajectoryId: 't3', leaseId: 'l3', waiterId: 'w3', image: 'regXio/b-1:x', ...lease })).toEqual({ refused: true });
    expect(await r.acquireImage({ trajectoryId: 't4', leaseId: 'l4', waiterId: 'w4', image: 'reg.io/b-12:x', ...lease })).toEqual({ refused: true });
    // wb's capacity comes back: its waiting b request takes it, ahead of a later a request.
    await r.publishImages('wa', [], 0, false, ['a:1']);
    expect(await r.acquireImage({ trajectoryId: 't5', leaseId: 'l5', waiterId: 'w5', image: 'a:1', ...lease })).toMatchObject({ slot: { slotId: 'a-warm' } });
    await r.release('a-warm', 'l5', false);
    expect(await r.acquireImage({ trajectoryId: 't6', leaseId: 'l6', waiterId: 'w6', image: 'a:1', ...lease })).toEqual({ wait: '' });
    await r.publishImages('wb', [], 1, false, ['reg.io/b-?:*']);
    expect(await r.claimPending('wb', 30_000)).toEqual([{ image: 'reg.io/b-1:x', waiterId: 'w2' }]);
    // wa's capacity comes back: it skips the b requests and takes its own image's, which kept its place.
    await r.acquireImage({ trajectoryId: 't7', leaseId: 'l7', waiterId: 'w7', image: 'reg.io/b-2:y', ...lease });
    await r.publishImages('wa', [], 1, false, ['a:1']);
    expect(await r.claimPending('wa', 30_000)).toEqual([{ image: 'a:1', waiterId: 'w6' }]);
    expect(await r.redis.lrange(keysFor(prefix).images.pending, 0, -1)).toEqual(['w7']);
  });

  it("matches SLOTQ_IMAGES globs as the worker does (imageAllowed), Lua's magic characters included", async () => {
    const r = await registry();
    const cases: Array<[string, string]> = [
      ['swe-task-*', 'swe-task-12:latest'],
      ['swe-task-*', 'swe-tasks'],
      ['a.b/c?:1', 'a.b/cd:1'],
      ['a.b/c?:1', 'aXb/cd:1'],
      ['x+y:*', 'x+y:2'],
      ['x+y:*', 'xxy:2'],
      ['reg-io/(x)*', 'reg-io/(x)yz'],
      ['p%q-[a]:*', 'p%q-[a]:1'],
      ['p%q-[a]:*', 'p%q-a:1'],
      ['exact:1', 'exact:1'],
      ['exact:1', 'exact:10'],
    ];
    let n = 0;
    for (const [glob, image] of cases) {
      await r.publishImages('wa', [], 1, false, [glob]);
      await r.publishImages('wb', [], 1, false, [glob]);
      const got = await r.acquireImage({ trajectoryId: `g${++n}`, leaseId: `l${n}`, waiterId: `gw${n}`, image, ...lease });
      expect({ glob, image, placed: !('refused' in got) }).toEqual({ glob, image, placed: imageAllowed([glob], image) });
      await r.cancelWaiter(`gw${n}`);
    }
  });
});

describe('real workers', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });
  const BUSYBOX = 'slotq-test-busybox:latest';
  const DEBIAN = 'slotq-test-root:latest';

  it('two workers, one allowing only busybox: debian never lands on it, even when it has the room', async () => {
    h = harness();
    const onlyBusybox = await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 3 });
    const debian = await h.worker({ slots: 1, warmSpares: 0, images: [DEBIAN], ondemandSlots: 1 });
    const b = await h.backend();
    const first = await b.acquire('d1', { image: DEBIAN, timeoutMs: 60_000 });
    expect(first.workerId).toBe(debian.workerId);
    // The debian worker is full; the busybox-only worker has room (before the fix the second went there, and was refused).
    const second = b.acquire('d2', { image: DEBIAN, timeoutMs: 90_000 });
    const hb = async (): Promise<number> => Number(await h.redis().zscore(keysFor(h.prefix).heartbeats, onlyBusybox.workerId));
    const seen = await hb();
    await waitFor(async () => (await hb()) > seen, 20_000, 'a heartbeat round of the busybox-only worker (it claims requests waiting for capacity)');
    const seen2 = await hb();
    await waitFor(async () => (await hb()) > seen2, 20_000, 'a second heartbeat round of the busybox-only worker');
    await b.release(first);
    const got = await second;
    expect(got.workerId).toBe(debian.workerId);
    const [r] = await b.executeBatch([[got, 'bash', { command: 'test -x /usr/bin/python3 && echo debian' }]]);
    expect(r!.output.trim()).toBe('debian');
    await b.release(got);
    // An image no worker allows is refused at once, naming SLOTQ_IMAGES.
    const refused = await b.acquire('x1', { image: 'someone/else:1', timeoutMs: 30_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(SlotqError);
    expect(refused).toMatchObject({ code: 'INVALID_ARGS', retryable: false });
  });
});
