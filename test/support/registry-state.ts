import type { Command, Redis } from 'ioredis';
import { keysFor } from '../../src/shared/keys.js';
import { keysUnder } from '../../tools/testkit/leaks.js';

/**
 * Makes the connection behave as if every script it runs had run once already before its reply was
 * lost: ioredis re-sends a command it got no reply to after a reconnect, so a script may run twice
 * with the same keys and arguments. Each EVAL/EVALSHA goes out twice, the copy first; the caller sees
 * the second run's answer, as it would after a re-send.
 */
export function runEveryScriptTwice(redis: Redis): void {
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (cmd: Command, stream?: Parameters<Redis['sendCommand']>[1]) => {
    if (cmd.name === 'evalsha' || cmd.name === 'eval') {
      // The script's own Command class: it sends EVAL with the source on a connection that has not loaded it.
      const Same = cmd.constructor as typeof Command;
      const first = new Same(cmd.name, [...cmd.args]);
      first.promise.catch(() => undefined);
      send(first);
    }
    return send(cmd, stream);
  };
}

/**
 * Everything under a prefix, comparable across prefixes and runs: key names without the prefix, values
 * sorted where Redis does not order them, clock readings (13 to 16 digits) as T; the once keys left out.
 */
export async function registryState(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const root = keysFor(prefix).root;
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(redis, prefix)) {
    if (key.startsWith(`${root}:once:`)) continue;
    const type = await redis.type(key);
    const name = key.slice(root.length);
    if (type === 'hash') out[name] = Object.entries(await redis.hgetall(key)).sort();
    else if (type === 'zset') out[name] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'list') out[name] = await redis.lrange(key, 0, -1);
    else if (type === 'set') out[name] = (await redis.smembers(key)).sort();
    else out[name] = await redis.get(key);
  }
  return comparable(out) as Record<string, unknown>;
}

/** A value as comparable as registryState: JSON inside strings parsed (cjson orders keys as it likes), clock readings as T. */
export function comparable(v: unknown): unknown {
  if (typeof v === 'string') {
    if (/^[{[]/.test(v)) {
      try {
        return comparable(JSON.parse(v));
      } catch {
        // not JSON after all: compared as a string
      }
    }
    return v.replace(/\d{13,16}/g, 'T');
  }
  if (typeof v === 'number') return /^\d{13,16}$/.test(String(v)) ? 'T' : v;
  if (Array.isArray(v)) return v.map(comparable);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, comparable(x)]));
  return v;
}
