import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { SlotqError, type Slot, type SlotBackend } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import { keysFor } from '../../src/shared/keys.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { waitUntil } from '../../tools/testkit/wait.js';
import { containersOf, harness, type Harness } from '../support/harness.js';

/**
 * A trajectory's own image (acquire with `image`): workers make containers of it on demand, from images
 * built locally (scripts/build-images.sh; there is no registry here), and remove them on release.
 */
const BUSYBOX = 'slotq-test-busybox:latest';
const DEBIAN = 'slotq-test-root:latest';
const run = promisify(execFile);

/** A Docker driver whose "pull" tags the busybox test image under the name asked for, and counts the pulls. */
class TaggingDriver extends DockerDriver {
  pulls = 0;
  readonly removed: string[] = [];
  override async pullImage(image: string): Promise<void> {
    this.pulls++;
    await run('docker', ['tag', BUSYBOX, image]);
  }
  override async removeImage(image: string): Promise<void> {
    await super.removeImage(image);
    this.removed.push(image);
  }
}

/** A Docker driver whose pulls hang until the test lets them go (they then fail, as with no registry). */
class HangingPullDriver extends DockerDriver {
  private readonly hung: Array<() => void> = [];
  override async pullImage(image: string, opts: { onProgress?: (status: string) => void }): Promise<void> {
    opts.onProgress?.('Downloading 1 of 2 layers');
    await new Promise<void>((r) => this.hung.push(r));
    throw new Error(`no registry for ${image}`);
  }
  release(): void {
    for (const r of this.hung.splice(0)) r();
  }
}

const sh = async (b: SlotBackend, slot: Slot, command: string): Promise<string> => {
  const [r] = await b.executeBatch([[slot, 'bash', { command }]]);
  expect(r, command).toMatchObject({ success: true });
  return r!.output.trim();
};
const refusal = async (p: Promise<unknown>): Promise<SlotqError> => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SlotqError);
  return err as SlotqError;
};

describe('per-trajectory images', () => {
  let h: Harness;
  const tagged: string[] = [];
  afterEach(async () => {
    await h?.close();
    for (const image of tagged.splice(0)) await run('docker', ['rmi', '-f', image]).catch(() => undefined);
  });

  it('serves two images at once, each trajectory on its own image; affinity holds; release leaves only the pool', async () => {
    h = harness();
    const w = await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 2 });
    const b = await h.backend();
    const [a, d] = await Promise.all([b.acquire('t-busybox', { image: BUSYBOX, timeoutMs: 60_000 }), b.acquire('t-debian', { image: DEBIAN, timeoutMs: 60_000 })]);
    expect(a.slotId).not.toBe(d.slotId);
    expect(await sh(b, a, 'test -x /bin/busybox && ! test -e /usr/bin/python3 && id -u')).toBe('1000');
    expect(await sh(b, d, 'test -x /usr/bin/python3 && ! test -e /bin/busybox && id -u')).toBe('0');
    expect((await containersOf(h.prefix)).length).toBe(3);

    // Affinity: the same image gives the same slot; another image while holding is refused, saying so.
    expect((await b.acquire('t-busybox', { image: BUSYBOX })).slotId).toBe(a.slotId);
    const other = await refusal(b.acquire('t-busybox', { image: DEBIAN }));
    expect(other.code).toBe('INVALID_ARGS');
    expect(other.message).toMatch(/holds a slot of image slotq-test-busybox:latest.*release it first/);
    // The registry says the same to another process of the same owner scope.
    const registry = new Registry(h.redis(), keysFor(h.prefix));
    const asOwner = { trajectoryId: 't-busybox', owner: b.producerId, leaseId: 'other-lease', ttlMs: 60_000, waiterId: 'other-waiter', waiterTtlMs: 1000 };
    expect(await registry.acquireImage({ ...asOwner, image: DEBIAN })).toMatchObject({ other: { slotId: a.slotId, image: BUSYBOX } });
    // Another producer naming the same trajectory owns another one: never b's slot, here no capacity for it.
    const b2 = await h.backend();
    expect((await refusal(b2.acquire('t-busybox', { image: BUSYBOX, timeoutMs: 500 }))).code).toBe('NO_SLOT');
    // Without image nothing changes: the worker's own pool.
    const plain = await b.acquire('t-plain');
    expect(await sh(b, plain, 'test -e /opt/slotq-sandbox || test -x /usr/bin/python3; id -u')).toBeTruthy();

    await b.release(a);
    await b.release(d, { resetWorkspace: true });
    await waitUntil(async () => (await containersOf(h.prefix)).length === 1, 30_000, 'on-demand containers removed on release');
    await waitUntil(() => [...w.slots.keys()].every((id) => !id.includes('-i')), 10_000, 'on-demand slots gone from the worker');
    // Capacity came back: the next trajectory of an image gets a fresh container.
    const again = await b.acquire('t-busybox-2', { image: BUSYBOX, timeoutMs: 60_000 });
    expect(await sh(b, again, 'ls /workspace | wc -l')).toBe('0');
  });

  it('keeps SLOTQ_WARM_PER_IMAGE containers warm, and the next acquire of that image takes one', async () => {
    h = harness();
    await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 2, warmPerImage: 1 });
    const b = await h.backend();
    const s1 = await b.acquire('w1', { image: BUSYBOX, timeoutMs: 60_000 });
    await sh(b, s1, 'echo dirty > /workspace/f');
    await b.release(s1);
    await waitUntil(async () => (await h.redis().zcard(`{${h.prefix}}:ifree`)) === 1, 30_000, 'a warm container of the image');
    const s2 = await b.acquire('w2', { image: BUSYBOX, timeoutMs: 1000 });
    expect(s2.slotId).toBe(s1.slotId);
    expect(await sh(b, s2, 'ls /workspace | wc -l')).toBe('0');
    await b.release(s2);
  });

  it('a warm container of one image makes room for another image when no worker has room left', async () => {
    h = harness();
    await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 1, warmPerImage: 1 });
    const b = await h.backend();
    await b.release(await b.acquire('m1', { image: BUSYBOX, timeoutMs: 60_000 }));
    await waitUntil(async () => (await h.redis().zcard(`{${h.prefix}}:ifree`)) === 1, 30_000, 'a warm container of busybox');
    const d = await b.acquire('m2', { image: DEBIAN, timeoutMs: 60_000 });
    expect(await sh(b, d, 'test -x /usr/bin/python3 && echo debian')).toBe('debian');
    expect((await containersOf(h.prefix)).length).toBe(2); // the pool's slot and debian's; busybox's warm one is gone
  });

  it('refuses an image outside SLOTQ_IMAGES, and one it cannot pull, non-retryable and naming the image', async () => {
    h = harness();
    await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 2 });
    const b = await h.backend();
    const refused = await refusal(b.acquire('r1', { image: 'someone/else:1', timeoutMs: 30_000 }));
    expect(refused).toMatchObject({ code: 'INVALID_ARGS', retryable: false });
    expect(refused.message).toMatch(/someone\/else:1 is refused .*SLOTQ_IMAGES/);
    const missing = `slotq-test-missing-${randomId(4)}:latest`;
    const unpullable = await refusal(b.acquire('r2', { image: missing, timeoutMs: 30_000 }));
    expect(unpullable).toMatchObject({ code: 'INVALID_ARGS', retryable: false });
    expect(unpullable.message).toContain(`image ${missing} is not on the Docker engine`);
    expect((await refusal(b.acquire('r3', { image: 'not an image' }))).code).toBe('INVALID_ARGS');
    // The capacity of the failed attempts came back: an allowed image is served.
    const ok = await b.acquire('r4', { image: BUSYBOX, timeoutMs: 60_000 });
    expect(await sh(b, ok, 'echo ok')).toBe('ok');
  });

  it('gives NO_SLOT after timeoutMs, saying why, when no worker has on-demand capacity', async () => {
    h = harness();
    await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 0 });
    const b = await h.backend();
    const err = await refusal(b.acquire('n1', { image: BUSYBOX, timeoutMs: 500 }));
    expect(err).toMatchObject({ code: 'NO_SLOT', retryable: true });
    expect(err.message).toMatch(/no worker had on-demand capacity left for image slotq-test-busybox:latest.*SLOTQ_ONDEMAND_SLOTS/);
  });

  it('pulls a missing image once for concurrent acquires; waiters of one image do not block another', async () => {
    h = harness();
    const driver = new TaggingDriver();
    const image = `slotq-test-pulled-${randomId(4)}:latest`;
    tagged.push(image);
    await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 3, driver });
    const b = await h.backend();
    const slots = await Promise.all(['p1', 'p2', 'p3'].map((t) => b.acquire(t, { image, timeoutMs: 60_000 })));
    expect(new Set(slots.map((s) => s.slotId)).size).toBe(3);
    expect(driver.pulls).toBe(1);
    // Capacity is all used: a waiter for another image waits, and a release of this image serves it.
    const other = b.acquire('q1', { image: DEBIAN, timeoutMs: 60_000 });
    await b.release(slots[0]!);
    expect(await sh(b, await other, 'test -x /usr/bin/python3 && echo debian')).toBe('debian');
  });

  it('a pull that outlasts SLOTQ_PULL_TIMEOUT_S is NO_SLOT, retryable, naming the image', async () => {
    h = harness();
    const driver = new HangingPullDriver();
    const w = await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 1, pullTimeoutS: 1, driver });
    const b = await h.backend();
    const image = `slotq-test-slow-${randomId(4)}:latest`;
    const acquiring = refusal(b.acquire('s1', { image, timeoutMs: 30_000 }));
    // Pull progress shows in the worker's registry entry (the board's workers table), and goes when the pull ends.
    const pulling = async (): Promise<string | undefined> => (await h.redis().hget(`{${h.prefix}}:worker:${w.workerId}`, 'pulling')) ?? undefined;
    await waitUntil(async () => (await pulling()) === `${image}: Downloading 1 of 2 layers`, 10_000, 'pull progress in the worker entry');
    const err = await acquiring;
    expect(await pulling()).toBeUndefined();
    driver.release();
    expect(err).toMatchObject({ code: 'NO_SLOT', retryable: true });
    expect(err.message).toMatch(new RegExp(`pulling image ${image} did not finish within 1 s \\(SLOTQ_PULL_TIMEOUT_S\\)`));
  });

  it('evicts unused on-demand images beyond SLOTQ_IMAGE_CACHE_GB, never one in use', async () => {
    h = harness();
    const driver = new TaggingDriver();
    const [held, freed] = [`slotq-test-evict-a-${randomId(4)}:latest`, `slotq-test-evict-b-${randomId(4)}:latest`];
    tagged.push(held, freed);
    await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 2, imageCacheGb: 0.000001, driver });
    const b = await h.backend();
    const a = await b.acquire('e1', { image: held, timeoutMs: 60_000 });
    const c = await b.acquire('e2', { image: freed, timeoutMs: 60_000 });
    expect(driver.removed).toEqual([]); // both over the budget, both in use
    await b.release(c);
    await waitUntil(() => driver.removed.includes(freed), 30_000, 'the released image evicted');
    expect(driver.removed).not.toContain(held);
    expect(await driver.inspectImage(held)).toBeDefined();
    expect(await sh(b, a, 'echo still')).toBe('still');
    await b.release(a);
    await waitUntil(() => driver.removed.includes(held), 30_000, 'the other image evicted once released');
  });

  it('a worker that joins serves the requests waiting for on-demand capacity', async () => {
    h = harness();
    await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 0 });
    const b = await h.backend();
    const waiting = b.acquire('j1', { image: BUSYBOX, timeoutMs: 60_000 });
    await waitUntil(async () => (await h.redis().llen(`{${h.prefix}}:ipending`)) === 1, 10_000, 'the request waiting for capacity');
    const joined = await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 1 });
    const slot = await waiting;
    expect(slot.workerId).toBe(joined.workerId);
    expect(await sh(b, slot, 'test -x /bin/busybox && echo busybox')).toBe('busybox');
  });

  it('a request a stopping worker was serving goes to another worker', async () => {
    h = harness();
    const hanging = new HangingPullDriver();
    const image = `slotq-test-moved-${randomId(4)}:latest`;
    tagged.push(image);
    const first = await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 1, driver: hanging });
    const b = await h.backend();
    const waiting = b.acquire('d1', { image, timeoutMs: 60_000 });
    await waitUntil(async () => (await h.redis().hget(`{${h.prefix}}:worker:${first.workerId}`, 'pulling')) !== null, 10_000, 'the first worker pulling');
    const second = await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-*', ondemandSlots: 1, driver: new TaggingDriver() });
    const stopping = first.stop();
    hanging.release();
    await stopping;
    const slot = await waiting;
    expect(slot.workerId).toBe(second.workerId);
    expect(await sh(b, slot, 'echo moved')).toBe('moved');
  });

  it('places an image on the worker that holds it', async () => {
    h = harness();
    const a = await h.worker({ slots: 1, warmSpares: 0, images: [BUSYBOX], ondemandSlots: 1 });
    const b = await h.backend();
    const first = await b.acquire('h1', { image: BUSYBOX, timeoutMs: 60_000 });
    expect(first.workerId).toBe(a.workerId);
    await b.release(first);
    await waitUntil(async () => (await containersOf(h.prefix, a.workerId)).length === 1, 30_000, 'the first on-demand container removed');
    // A second worker with more room, which has never served the image (allowed by a pattern, so it does not
    // look for it at start): placement still picks the holder.
    await h.worker({ slots: 1, warmSpares: 0, images: 'slotq-test-busy*', ondemandSlots: 4 });
    const second = await b.acquire('h2', { image: BUSYBOX, timeoutMs: 60_000 });
    expect(second.workerId).toBe(a.workerId);
  });
});
