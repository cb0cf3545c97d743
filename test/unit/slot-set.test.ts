import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { SlotSet } from '../../src/worker/lifecycle/slot-set.js';
import { FakeDriver, FakeSlot } from '../support/fake-driver.js';

describe('SlotSet', () => {
  it('brings every slot up; a slot whose session does not open is retried on a new container', async () => {
    const driver = new FakeDriver();
    const bad = new Set(['c2']); // the second container made never opens a session
    const set = new SlotSet(new Map<string, FakeSlot>(), driver, (id, c) => new FakeSlot(id, c, (x) => bad.has(x)), silentLogger());
    await set.createAll(['s0', 's1'], driver.source());
    expect([...set.slots.keys()].sort()).toEqual(['s0', 's1']);
    expect([...set.slots.values()].every((s) => s.sessionOpen)).toBe(true);
    expect(driver.removed).toEqual(['c2']);
    expect(driver.containers.size).toBe(2);
  });

  it('gives up after the attempts, with no container left behind for the failed slot', async () => {
    const driver = new FakeDriver();
    const set = new SlotSet(new Map<string, FakeSlot>(), driver, (id, c) => new FakeSlot(id, c, () => id === 's1'), silentLogger());
    const err = await set.createAll(['s0', 's1'], driver.source(), 2).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INTERNAL' });
    expect((err as Error).message).toMatch(/could not bring up every slot/);
    expect([...set.slots.keys()]).toEqual(['s0']);
    await set.removeAll();
    expect(driver.containers.size).toBe(0);
  });

  it('counts broken slots', async () => {
    const driver = new FakeDriver();
    const set = new SlotSet(new Map<string, FakeSlot>(), driver, (id, c) => new FakeSlot(id, c), silentLogger());
    await set.createAll(['s0', 's1', 's2'], driver.source());
    set.slots.get('s1')!.brokenReason = 'died';
    expect(set.brokenCount()).toBe(1);
  });
});
