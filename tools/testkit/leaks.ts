import Docker from 'dockerode';
import { LABELS, keysFor } from '../../shared/keys.js';
import { createRedis } from '../../shared/redis.js';

export interface Leaks {
  /** Slot containers with the prefix label still there. */
  containers: string[];
  /** Keys under `{prefix}:*` still there. */
  keys: string[];
}

async function scanKeys(redisUrl: string, prefix: string): Promise<string[]> {
  const redis = createRedis(redisUrl, { name: 'slotq-chaos-leaks' });
  try {
    const keys: string[] = [];
    const stream = redis.scanStream({ match: `${keysFor(prefix).root}:*`, count: 1000 });
    for await (const batch of stream as AsyncIterable<string[]>) keys.push(...batch);
    return keys.sort();
  } finally {
    redis.disconnect();
  }
}

async function containersOf(prefix: string, docker: Docker): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${LABELS.prefix}=${prefix}`] } });
  return list.map((c) => c.Id.slice(0, 12));
}

/**
 * What a run left behind once everything stopped: slot containers and Redis keys of its prefix.
 * Polls up to settleMs first, since a killed worker's containers end by themselves a moment later.
 */
export async function findLeaks(redisUrl: string, prefix: string, settleMs: number, docker: Docker = new Docker()): Promise<Leaks> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const leaks = { containers: await containersOf(prefix, docker), keys: await scanKeys(redisUrl, prefix) };
    if ((leaks.containers.length === 0 && leaks.keys.length === 0) || Date.now() > deadline) return leaks;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Describes leaks for the report: "2 container(s); 3 key(s): {p}:workers, …". */
export function describeLeaks(leaks: Leaks): string {
  const parts: string[] = [];
  if (leaks.containers.length) parts.push(`${leaks.containers.length} container(s) ${leaks.containers.slice(0, 4).join(', ')}`);
  if (leaks.keys.length) parts.push(`${leaks.keys.length} key(s) ${leaks.keys.slice(0, 6).join(', ')}${leaks.keys.length > 6 ? ', …' : ''}`);
  return parts.join('; ');
}
