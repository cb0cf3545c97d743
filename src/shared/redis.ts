import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { SlotqConfig } from './config.js';
import { ConfigError, InternalError } from './errors.js';

const COMMAND_RETRIES = 10;

/** A standalone Redis or a Redis Cluster client: slotq uses only the command surface both share. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** BullMQ workers and inbox readers: commands wait through outages instead of failing. */
  blocking?: boolean;
  name?: string;
  onError?: (err: Error) => void;
  /** Talk to a Redis Cluster; unset: SLOTQ_REDIS_CLUSTER decides. */
  cluster?: boolean;
  /** PEM file of the CA for rediss://; unset: SLOTQ_REDIS_TLS_CA decides. */
  tlsCaFile?: string;
}

/**
 * The one way slotq opens Redis, from the parsed config (standalone or Cluster, TLS, password):
 * workers, producers, the board and the gateway all connect through it.
 */
export function connectRedis(config: Pick<SlotqConfig, 'redisUrl' | 'redisCluster' | 'redisTlsCa'>, opts: Omit<RedisConnectOptions, 'cluster' | 'tlsCaFile'> = {}): Redis {
  return createRedis(config.redisUrl, { ...opts, cluster: config.redisCluster, ...(config.redisTlsCa ? { tlsCaFile: config.redisTlsCa } : {}) });
}

/**
 * A Redis connection from a URL (passwords and rediss:// work), or a Redis Cluster connection when
 * `cluster` (or SLOTQ_REDIS_CLUSTER) says so, from one node's URL or a comma-separated list of them.
 * Typed as `Redis` so existing call sites keep compiling; a Cluster client answers the same commands
 * (every slotq key shares one hash tag, so pipelines and scripts stay on one node).
 */
export function createRedis(url: string, opts: RedisConnectOptions = {}): Redis {
  const urls = url.split(',').map((u) => u.trim()).filter(Boolean);
  const cluster = opts.cluster ?? envFlag(process.env['SLOTQ_REDIS_CLUSTER']);
  const tlsCaFile = opts.tlsCaFile ?? (process.env['SLOTQ_REDIS_TLS_CA'] || undefined);
  if (urls.length > 1 && !cluster) throw new ConfigError(`REDIS_URL lists ${urls.length} nodes: set SLOTQ_REDIS_CLUSTER=true for a Redis Cluster, or give one URL`);
  const options: RedisOptions = {
    // Blocking connections wait through outages, as BullMQ requires. Command connections give up after
    // ~13 s of reconnecting (100 ms doubling to 2 s per attempt), so a Redis outage becomes an error
    // (a typed result upstream), never a call that hangs forever.
    maxRetriesPerRequest: opts.blocking ? null : COMMAND_RETRIES,
    enableReadyCheck: true,
    connectionName: opts.name ?? 'slotq',
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  const tls = tlsOptions(urls[0] ?? url, tlsCaFile);
  const client: RedisClient = cluster ? clusterClient(urls, options, tls) : new Redis(url, { ...options, ...(tls ? { tls } : {}) });
  // ioredis reconnects by itself; without a listener it would print every failed attempt to the console.
  client.on('error', (err: Error) => opts.onError?.(err));
  return client as Redis;
}

function clusterClient(urls: string[], options: RedisOptions, tls: TlsOptions | undefined): Cluster {
  const first = new URL(urls[0]!);
  const nodes: ClusterNode[] = urls.map((u) => {
    const parsed = new URL(u);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  return new Cluster(nodes, {
    redisOptions: {
      ...options,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(tls ? { tls } : {}),
    },
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    // Through a failover or a resharding, a command is retried on the new owner of the slot.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2000,
  });
}

function tlsOptions(url: string, caFile: string | undefined): TlsOptions | undefined {
  if (!url.startsWith('rediss://')) return undefined;
  if (!caFile) return {};
  try {
    return { ca: readFileSync(caFile) };
  } catch (err) {
    throw new ConfigError(`SLOTQ_REDIS_TLS_CA=${caFile} cannot be read: ${(err as Error).message}`);
  }
}

const envFlag = (v: string | undefined): boolean => /^(1|true|yes|on|y|enabled)$/i.test(v ?? '');

/**
 * The keys matching `match` (SCAN, so it never blocks Redis). On a Cluster every master is scanned
 * (SCAN answers for one node only); a prefix's keys share one hash tag, so one node has them all.
 */
export async function scanKeys(redis: RedisClient, match: string, count = 1000): Promise<string[]> {
  if (redis instanceof Cluster) await redis.ping(); // the node list is known once the client is ready
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    for await (const batch of node.scanStream({ match, count }) as AsyncIterable<string[]>) keys.push(...batch);
  }
  return keys;
}

/** PING with a deadline, so start() fails with a clear message instead of hanging. */
export async function verifyRedis(redis: RedisClient, url: string, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InternalError(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms: start one (e.g. \`slotq up\` or \`redis-server\`) or set REDIS_URL (and SLOTQ_REDIS_CLUSTER=true for a Redis Cluster)`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([redis.ping(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The URL (or list) without passwords, for messages and logs. */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/,]*):[^@/,]*@/g, '//$1:***@');
