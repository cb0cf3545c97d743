import { Redis, type RedisOptions } from 'ioredis';

const COMMAND_RETRIES = 10;

/**
 * A Redis connection from a URL (passwords and rediss:// work: ioredis parses both).
 * `blocking` connections (BullMQ workers, inbox readers) must not time out their commands.
 */
export function createRedis(url: string, opts: { blocking?: boolean; name?: string; onError?: (err: Error) => void } = {}): Redis {
  const options: RedisOptions = {
    // Blocking connections (BullMQ workers, inbox readers) wait through outages, as BullMQ requires.
    // Command connections give up after ~13 s of reconnecting (100 ms doubling to 2 s per attempt), so a
    // Redis outage becomes an error (a typed result upstream), never a call that hangs forever.
    maxRetriesPerRequest: opts.blocking ? null : COMMAND_RETRIES,
    enableReadyCheck: true,
    connectionName: opts.name ?? 'slotq',
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  if (url.startsWith('rediss://')) options.tls = {};
  const redis = new Redis(url, options);
  // ioredis reconnects by itself; without a listener it would print every failed attempt to the console.
  redis.on('error', (err: Error) => opts.onError?.(err));
  return redis;
}

/** PING with a deadline, so start() fails with a clear message instead of hanging. */
export async function verifyRedis(redis: Redis, url: string, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms: start one (e.g. \`slotq up\` or \`redis-server\`) or set REDIS_URL`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([redis.ping(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The URL without its password, for messages and logs. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
