import Table from 'cli-table3';
import type { SlotqConfig } from '../shared/config.js';
import { LABELS, keysFor } from '../shared/keys.js';
import { connectRedis, scanKeys, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry/registry.js';
import { DockerDriver } from '../worker/engine/docker-driver.js';

/** A table of workers and their slots, from the registry. */
export async function statusTable(config: SlotqConfig): Promise<string> {
  const redis = connectRedis(config, { name: 'slotq-status' });
  try {
    await verifyRedis(redis, config.redisUrl);
    const registry = new Registry(redis, keysFor(config.prefix));
    const table = new Table({ head: ['worker', 'host', 'runtime', 'alive', 'state', 'slot', 'slot state', 'holder', 'held for (s)'] });
    const now = Date.now();
    for (const wid of (await registry.listWorkers()).sort()) {
      const info = await registry.workerInfo(wid);
      const alive = Object.keys(info).length > 0;
      for (const s of await registry.workerSlots(wid)) {
        const heldS = s['state'] === 'held' && s['heldAtMs'] ? ((now - Number(s['heldAtMs'])) / 1000).toFixed(0) : '';
        table.push([wid, info['host'] ?? '?', info['runtime'] ?? '?', alive ? 'yes' : 'NO', info['state'] ?? '-', s.slotId, s['state'] ?? '?', s['trajectoryId'] ?? '', heldS]);
      }
    }
    return table.length ? table.toString() : `no workers registered under prefix "${config.prefix}"`;
  } finally {
    redis.disconnect();
  }
}

/** Removes every key and container under a prefix. Returns what was removed. */
export async function purge(config: SlotqConfig): Promise<{ keys: number; containers: number }> {
  const redis = connectRedis(config, { name: 'slotq-purge' });
  let keys = 0;
  try {
    await verifyRedis(redis, config.redisUrl);
    const found = await scanKeys(redis, `${keysFor(config.prefix).root}:*`, 500); // every master of a Cluster
    for (let i = 0; i < found.length; i += 500) keys += await redis.del(...found.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
  const docker = new DockerDriver();
  const list = await docker.listManaged([`${LABELS.prefix}=${config.prefix}`]);
  await Promise.all(list.map((c) => docker.remove(c.id).catch(() => undefined)));
  return { keys, containers: list.length };
}
