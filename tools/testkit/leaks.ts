import type { Redis } from 'ioredis';
import { keysFor } from '../../src/shared/keys.js';
import { createRedis, scanKeys } from '../../src/shared/redis.js';
import { containersOf } from './docker.js';
import { liveProcesses, type ManagedProcess } from './processes.js';
import { waitUntil } from './wait.js';

export interface Leaks {
  /** Slot containers with the prefix label still there (short IDs). */
  containers: string[];
  /** Keys under `{prefix}:*` still there (a script's remembered answer, expiring, is not counted). With `persistentKeysOnly`, only those without a TTL. */
  keys: string[];
  /** Child processes (started through the testkit) still running. */
  processes: string[];
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
}

/** Keys under the prefix (sorted), on a standalone Redis or a Cluster; with persistentOnly, only those without a TTL. */
export async function keysUnder(redis: Redis, prefix: string, persistentOnly = false): Promise<string[]> {
  const keys = await scanKeys(redis, `${keysFor(prefix).root}:*`); // every master of a Cluster
  if (!persistentOnly || keys.length === 0) return keys.sort();
  const ttls = (await redis.pipeline(keys.map((k) => ['pttl', k])).exec()) ?? [];
  return keys.filter((_, i) => ttls[i]?.[1] === -1).sort();
}

/** What a test or a run left behind once everything stopped: slot containers, Redis keys and processes. */
export async function findLeaks(redisUrl: string, prefix: string, opts: LeakCheckOptions = {}): Promise<Leaks> {
  const redis = createRedis(redisUrl, { name: 'slotq-leak-check', ...(opts.cluster === undefined ? {} : { cluster: opts.cluster }) });
  const look = async (): Promise<Leaks> => ({
    containers: (await containersOf(prefix)).map((id) => id.slice(0, 12)),
    keys: (await keysUnder(redis, prefix, opts.persistentKeysOnly ?? false)).filter((k) => !isOnceKey(prefix, k)),
    processes: (opts.processes?.() ?? []).filter((p) => p.running).map((p) => `${p.name} (pid ${p.pid})`),
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

export const isClean = (l: Leaks): boolean => l.containers.length + l.keys.length + l.processes.length === 0;
export const leakCount = (l: Leaks): number => l.containers.length + l.keys.length + l.processes.length;

/** Describes leaks for a report: "2 container(s) …; 3 key(s) {p}:workers, …; 1 process(es) …". */
export function describeLeaks(leaks: Leaks): string {
  const parts: string[] = [];
  if (leaks.containers.length) parts.push(`${leaks.containers.length} container(s) ${leaks.containers.slice(0, 4).join(', ')}`);
  if (leaks.keys.length) parts.push(`${leaks.keys.length} key(s) ${leaks.keys.slice(0, 6).join(', ')}${leaks.keys.length > 6 ? ', …' : ''}`);
  if (leaks.processes.length) parts.push(`${leaks.processes.length} process(es) ${leaks.processes.join(', ')}`);
  return parts.join('; ');
}

/** Processes started (through the testkit) since this call that are still running. */
export function processesSince(): () => ManagedProcess[] {
  const before = new Set(liveProcesses());
  return () => liveProcesses().filter((p) => !before.has(p));
}
