import { describe, expect, it } from 'vitest';
import { InternalError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Registry } from '../../src/shared/registry/registry.js';
import { SlotLeases } from '../../src/producer/slot-leases.js';

/** A registry whose scripts fail, as when Redis goes away mid-acquire. */
function failingRegistry(): { registry: Registry; cancelled: string[] } {
  const cancelled: string[] = [];
  const fake = {
    acquire: () => Promise.reject(new InternalError('connection is closed')),
    cancelWaiter: (id: string) => {
      cancelled.push(id);
      return Promise.resolve(true);
    },
  };
  return { registry: fake as unknown as Registry, cancelled };
}

describe('SlotLeases', () => {
  it('leaves no waiter behind when registry.acquire throws, and withdraws it from the registry', async () => {
    const { registry, cancelled } = failingRegistry();
    const leases = new SlotLeases(registry, 'p1', 'p:p1', 60_000, silentLogger());
    for (let i = 0; i < 50; i++) await expect(leases.acquire(`t${i}`, 1000)).rejects.toThrow('connection is closed');
    expect(leases.waiterCount).toBe(0);
    expect(cancelled).toHaveLength(50);
  });
});
