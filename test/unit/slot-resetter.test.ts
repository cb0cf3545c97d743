import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { SlotResetter } from '../../src/worker/lifecycle/slot-resetter.js';
import { FakeDriver, FakeSlot } from '../support/fake-driver.js';

/** A resetter over a fake driver and one fake slot holding container c1. */
async function setup(running = true, registry = new Map<string, string | null>()) {
  const driver = new FakeDriver();
  const first = await driver.create({ labels: {} });
  const slot = new FakeSlot('s0', first);
  const relisted: string[] = [];
  const resetter = new SlotResetter({
    slots: new Map([['s0', slot]]),
    containers: driver.source(),
    driver,
    listAsFree: (s) => (relisted.push(`${s.slotId}@${s.containerId}`), Promise.resolve()),
    running: () => running,
    registryState: (id) => Promise.resolve(registry.get(id) ?? null),
    backoffMs: [1, 1, 1],
    log: silentLogger(),
  });
  return { driver, slot, first, relisted, resetter, registry };
}

describe('SlotResetter', () => {
  it('reset gives the slot a new container, removes the old one and offers the slot again', async () => {
    const { driver, slot, first, relisted, resetter } = await setup();
    slot.workspaceLost = true;
    await resetter.reset('s0');
    await resetter.drained();
    expect(slot.containerId).not.toBe(first);
    expect(slot.sessionOpen).toBe(true);
    expect(slot.workspaceLost).toBe(false);
    expect(driver.removed).toEqual([first]);
    expect(relisted).toEqual([`s0@${slot.containerId}`]);
  });

  it('a reset runs in the slot FIFO, after the work queued before it', async () => {
    const { slot, resetter } = await setup();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const busy = slot.enqueue(() => gate.then(() => void seen.push(`call on ${slot.containerId}`)));
    const reset = resetter.reset('s0').then(() => seen.push(`reset to ${slot.containerId}`));
    release();
    await Promise.all([busy, reset]);
    expect(seen).toEqual(['call on c1', 'reset to c2']);
  });

  it('a reset with no container to be had marks the slot broken and keeps it off the free list', async () => {
    const { driver, slot, first, relisted, resetter } = await setup();
    driver.failCreate = { message: 'dockerd is down', once: false };
    await resetter.reset('s0');
    await resetter.drained();
    expect(slot.brokenReason).toMatch(/dockerd is down/);
    expect(relisted).toEqual([]);
    expect(driver.removed).toEqual([first]);
  });

  it('a reset whose new container fails is tried again with backoff, then succeeds', async () => {
    const { driver, slot, first, relisted, resetter } = await setup();
    let failures = 2;
    const take = driver.create.bind(driver);
    driver.create = (spec) => (failures-- > 0 ? Promise.reject(new Error('engine busy')) : take(spec));
    await resetter.reset('s0');
    await resetter.drained();
    expect(slot.brokenReason).toBeUndefined();
    expect(relisted).toEqual([`s0@${slot.containerId}`]);
    expect(driver.removed).toEqual([first]);
  });

  it('a reset that keeps failing leaves the slot resetting; the sweep finds it and a later reset brings it back', async () => {
    const { driver, slot, relisted, resetter, registry } = await setup();
    registry.set('s0', 'resetting');
    driver.failCreate = { message: 'dockerd is down', once: false };
    await resetter.reset('s0');
    expect(slot.brokenReason).toMatch(/dockerd is down/);
    expect(resetter.stranded(registry)).toEqual([]); // first sighting: a reset job may be on its way
    expect(resetter.stranded(registry)).toEqual(['s0']);
    driver.failCreate = undefined;
    await resetter.reset('s0');
    expect(slot.brokenReason).toBeUndefined();
    expect(relisted).toEqual([`s0@${slot.containerId}`]);
  });

  it('a reset is idempotent: a slot the registry shows free or held is left alone (a late reset job, a sweep)', async () => {
    const { slot, first, relisted, resetter, registry } = await setup();
    for (const state of ['free', 'held']) {
      registry.set('s0', state);
      await resetter.reset('s0');
      expect(slot.containerId).toBe(first);
      expect(resetter.stranded(registry)).toEqual([]);
    }
    expect(relisted).toEqual([]);
  });

  it('replaceBroken swaps a dead container for a fresh one and tells the holder its workspace is gone', async () => {
    const { driver, slot, first, relisted, resetter } = await setup();
    await resetter.replaceBroken(slot); // not broken: nothing to do
    expect(slot.containerId).toBe(first);
    slot.brokenReason = 'container died';
    await resetter.replaceBroken(slot);
    expect(slot.containerId).not.toBe(first);
    expect(slot).toMatchObject({ brokenReason: undefined, workspaceLost: true, sessionOpen: true });
    expect(driver.removed).toEqual([first]);
    expect(relisted).toEqual([]); // still leased to its holder
  });

  it('a stopping worker takes no new container into a slot and gives back the one it got', async () => {
    const { driver, slot, first, relisted, resetter } = await setup(false);
    await resetter.reset('s0');
    await resetter.drained();
    expect(slot.containerId).toBe(first);
    expect(relisted).toEqual([]);
    expect(driver.containers.size).toBe(0); // the fresh one and the old one are both gone
  });
});
