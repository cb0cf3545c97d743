import type { Redis } from 'ioredis';
import { execFile } from 'node:child_process';
import { cpus, platform, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { containersOf, removeContainers } from '../testkit/docker.js';
import { keysUnder } from '../testkit/leaks.js';
import { waitUntil } from '../testkit/wait.js';

const execFileP = promisify(execFile);

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemMb: number;
  node: string;
  platform: string;
  dockerVersion: string;
  redisVersion: string;
}

/** The engine's version, from the docker CLI (the driver port has no use for it). */
async function dockerVersion(): Promise<string> {
  try {
    const { stdout } = await execFileP('docker', ['version', '--format', '{{.Server.Version}}'], { timeout: 20_000 });
    return stdout.trim() || 'unknown';
  } catch {
    return 'unknown'; // no docker CLI: the report just says so
  }
}

export async function machineInfo(redis: Redis): Promise<MachineInfo> {
  const server = await redis.info('server');
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    platform: `${platform()} ${release()}`,
    dockerVersion: await dockerVersion(),
    redisVersion: /^redis_version:(\S+)/m.exec(server)?.[1] ?? 'unknown',
  };
}

/**
 * Waits (up to timeoutMs) until the worker's warm spares exist too, so their creation, which the worker
 * starts in the background after start(), does not land in the measured calls.
 */
export async function waitForContainers(prefix: string, count: number, timeoutMs: number): Promise<void> {
  await waitUntil(async () => (await containersOf(prefix)).length >= count, timeoutMs, `the worker to reach ${count} containers`, 100);
}

/**
 * After the worker stopped: removes (and counts) containers and Redis keys still carrying the bench's
 * prefix, so a run leaves nothing behind and the counts show whether slotq cleaned up after itself.
 */
export async function leftovers(redis: Redis, prefix: string): Promise<{ leakedContainers: number; leftoverRedisKeys: number }> {
  const ids = await containersOf(prefix);
  await removeContainers(ids);
  const keys = await keysUnder(redis, prefix);
  if (keys.length) await redis.unlink(...keys);
  return { leakedContainers: ids.length, leftoverRedisKeys: keys.length };
}
