import { describe, expect, it } from 'vitest';
import { keysFor } from '../../src/shared/keys.js';
import { createRedis } from '../../src/shared/redis.js';
import { redisBehaviour } from '../support/redis-behaviour.js';
import { startRedisCluster } from '../support/redis-servers.js';

/**
 * slotq on a real Redis Cluster: three masters started here (`redis-server --cluster-enabled yes`,
 * joined by `redis-cli --cluster create`), REDIS_URL naming two of them, SLOTQ_REDIS_CLUSTER=true.
 */
describe('on a Redis Cluster (3 masters)', () => {
  redisBehaviour(startRedisCluster, () => ({ redisCluster: true }));

  it('keeps every key of a prefix in one hash slot (what the Lua scripts and pipelines need)', () => {
    const k = keysFor('p');
    for (const key of [k.workers, k.waiters, k.slots, k.trajectories, k.freeSlots, k.worker('w'), k.job('w', 'j'), k.inbox('x')]) expect(key.startsWith('{p}:')).toBe(true);
  });

  it('refuses a list of nodes without SLOTQ_REDIS_CLUSTER', () => {
    expect(() => createRedis('redis://127.0.0.1:1,redis://127.0.0.1:2', { cluster: false })).toThrow(/SLOTQ_REDIS_CLUSTER/);
  });
});
