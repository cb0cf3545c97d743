import { readdir } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { keysFor } from '../../src/shared/keys.js';
import { createRedis, scanKeys } from '../../src/shared/redis.js';
import { containersOf, helperContainers } from './docker.js';
import { liveProcesses, type ManagedProcess } from './processes.js';
import { waitUntil } from './wait.js';

export interface Leaks {
  /** Slot containers with the prefix label still there (short IDs). */
  containers: string[];
  /** Keys under `{prefix}:*` still there (a script's remembered answer, expiring, is not counted). With `persistentKeysOnly`, only those without a TTL. */
  keys: string[];
  /** Child processes (started through the testkit) still running. */
  processes: string[];
  /** FIFO channel directories on this host still there: a worker's own (`<channelDir>/<workerId>`) and each per-slot one in it. */
  channelDirs: string[];
  /** Helper fill containers (label org.slotq.helper=true) still there, but for those in `helpersBefore` (short IDs). */
  helpers: string[];
}

export interface LeakCheckOptions {
  /** Poll this long for the leaks to go away (a killed worker's containers end a moment later). */
  settleMs?: number;
  /** Count only keys that would stay forever (no TTL): inboxes and stats expire by themselves. */
  persistentKeysOnly?: boolean;
  /** Processes that count (default none). */
  processes?: () => ManagedProcess[];
  /** A Redis Cluster or not; unset: SLOTQ_REDIS_CLUSTER decides. */
  cluster?: boolean;
  /** The workers' channel directories that must be gone (SlotWorker's `<channelDir>/<channelSubdir(workerId)>`; default none). */
  channelDirs?: () => readonly string[];
  /** Helper containers that were there before (another run's, not this one's): not counted. Unset: every helper container counts. */
  helpersBefore?: readonly string[];
}

/** A worker's channel directory and the per-slot channel directories in it, when it is still there. */
async function channelDirsLeft(dir: string): Promise<string[]> {
  try {
    return [dir, ...(await readdir(dir)).map((name) => `${dir}/${name}`)];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Keys under the prefix (sorted), on a standalone Redis or a Cluster; with persistentOnly, only those without a TTL. */
export async function keysUnder(redis: Redis, prefix: string, persistentOnly = false): Promise<string[]> {
  const keys = await scanKeys(redis, `${keysFor(prefix).root}:*`); // every master of a Cluster
  if (!persistentOnly || keys.length === 0) return keys.sort();
  const ttls = (await redis.pipeline(keys.map((k) => ['pttl', k])).exec()) ?? [];
  return keys.filter((_, i) => ttls[i]?.[1] === -1).sort();
}

/** What a test or a run left behind once everything stopped: slot containers, Redis keys, processes, channel directories and helper containers. */
export async function findLeaks(redisUrl: string, prefix: string, opts: LeakCheckOptions = {}): Promise<Leaks> {
  const redis = createRedis(redisUrl, { name: 'slotq-leak-check', ...(opts.cluster === undefined ? {} : { cluster: opts.cluster }) });
  const look = async (): Promise<Leaks> => ({
    containers: (await containersOf(prefix)).map((id) => id.slice(0, 12)),
    keys: (await keysUnder(redis, prefix, opts.persistentKeysOnly ?? false)).filter((k) => !isOnceKey(prefix, k)),
    processes: (opts.processes?.() ?? []).filter((p) => p.running).map((p) => `${p.name} (pid ${p.pid})`),
    channelDirs: (await Promise.all((opts.channelDirs?.() ?? []).map(channelDirsLeft))).flat(),
    helpers: (await helperContainers()).filter((id) => !opts.helpersBefore?.includes(id)).map((id) => id.slice(0, 12)),
  });
  try {
    let leaks = await look();
    await waitUntil(async () => isClean((leaks = await look())), opts.settleMs ?? 0, 'leaks to settle', 250).catch(() => undefined);
    return leaks;
  } finally {
    redis.disconnect();
  }
}

/**
 * A registry script's remembered answer (registry-once.ts): written by every mutating script, it expires by
 * itself within ONCE_TTL_MS and is not state anything needs; the one key a finished run may leave behind.
 */
const isOnceKey = (prefix: string, key: string): boolean => key.startsWith(keysFor(prefix).once(''));

export const leakCount = (l: Leaks): number => l.containers.length + l.keys.length + l.processes.length + l.channelDirs.length + l.helpers.length;
export const isClean = (l: Leaks): boolean => leakCount(l) === 0;

/** Describes leaks for a report: "2 container(s) …; 3 key(s) {p}:workers, …; 1 process(es) …; 1 channel dir(s) …; 1 helper container(s) …". */
export function describeLeaks(leaks: Leaks): string {
  const parts: string[] = [];
  if (leaks.containers.length) parts.push(`${leaks.containers.length} container(s) ${leaks.containers.slice(0, 4).join(', ')}`);
  if (leaks.keys.length) parts.push(`${leaks.keys.length} key(s) ${leaks.keys.slice(0, 6).join(', ')}${leaks.keys.length > 6 ? ', …' : ''}`);
  if (leaks.processes.length) parts.push(`${leaks.processes.length} process(es) ${leaks.processes.join(', ')}`);
  if (leaks.channelDirs.length) parts.push(`${leaks.channelDirs.length} channel dir(s) ${leaks.channelDirs.slice(0, 4).join(', ')}${leaks.channelDirs.length > 4 ? ', …' : ''}`);
  if (leaks.helpers.length) parts.push(`${leaks.helpers.length} helper container(s) ${leaks.helpers.slice(0, 4).join(', ')}`);
  return parts.join('; ');
}

/** Processes started (through the testkit) since this call that are still running. */
export function processesSince(): () => ManagedProcess[] {
  const before = new Set(liveProcesses());
  return () => liveProcesses().filter((p) => !before.has(p));
}
