import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { cpus, platform, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { LABELS } from '../../shared/keys.js';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemMb: number;
  node: string;
  platform: string;
  dockerVersion: string;
  redisVersion: string;
}

export async function machineInfo(docker: Docker, redis: Redis): Promise<MachineInfo> {
  const server = await redis.info('server');
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: `${platform()} ${release()}`,
    dockerVersion: (await docker.version()).Version,
    redisVersion: /^redis_version:(\S+)/m.exec(server)?.[1] ?? 'unknown',
  };
}

const containersOf = async (docker: Docker, prefix: string): Promise<string[]> =>
  (await docker.listContainers({ all: true, filters: { label: [`${LABELS.prefix}=${prefix}`] } })).map((c) => c.Id);

/**
 * Waits (up to timeoutMs) until the worker's warm spares exist too, so their creation, which the worker
 * starts in the background after start(), does not land in the measured calls.
 */
export async function waitForContainers(docker: Docker, prefix: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await containersOf(docker, prefix)).length < count) {
    if (Date.now() > deadline) throw new Error(`bench: the worker did not reach ${count} containers within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * After the worker stopped: removes (and counts) containers and Redis keys still carrying the bench's
 * prefix, so a run leaves nothing behind and the counts show whether slotq cleaned up after itself.
 */
export async function leftovers(docker: Docker, redis: Redis, prefix: string): Promise<{ leakedContainers: number; leftoverRedisKeys: number }> {
  const ids = await containersOf(docker, prefix);
  await Promise.all(ids.map((id) => docker.getContainer(id).remove({ force: true })));
  let leftoverRedisKeys = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    leftoverRedisKeys += keys.length;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  return { leakedContainers: ids.length, leftoverRedisKeys };
}
