import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { SlotqConfig } from './config.js';
import { ConfigError, InternalError } from './errors.js';

const COMMAND_RETRIES = 10;
/**
 * A non-blocking command that got no reply within this long fails ("Command timed out") instead of
 * hanging: a silently dropped link, or a master that died mid-command. Covers time spent queued while
 * reconnecting too, so it bounds how long a command waits through a failover (reconnecting itself never
 * stops). slotq's scripts and pipelines answer in milliseconds.
 */
const COMMAND_TIMEOUT_MS = 15_000;
/** A socket that was written to and got nothing back for this long is destroyed and reconnected. */
const SOCKET_TIMEOUT_MS = 20_000;
/** Blocking clients wait on purpose (inbox BLPOP 1 s, BullMQ at most 10 s): their bound sits far above that. */
const BLOCKING_SOCKET_TIMEOUT_MS = 60_000;
/** TCP keep-alive probes start after this much idle time, so a dead peer is noticed on an idle link too. */
const KEEP_ALIVE_MS = 10_000;

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
  /** Find the master through Redis Sentinel (REDIS_URL then gives only credentials, db and rediss://). */
  sentinel?: SentinelSettings;
}

export interface SentinelSettings {
  sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** The monitored master's name. */
  name: string;
  password?: string;
  /** TLS to the sentinels themselves (the CA of tlsCaFile). */
  tls?: boolean;
}

type RedisConfig = Pick<SlotqConfig, 'redisUrl' | 'redisCluster' | 'redisTlsCa' | 'redisSentinels' | 'redisSentinelName' | 'redisSentinelPassword' | 'redisSentinelTls'>;

/**
 * The one way slotq opens Redis, from the parsed config (standalone or Cluster, TLS, password):
 * workers, producers, the board and the gateway all connect through it.
 */
export function connectRedis(config: RedisConfig, opts: Omit<RedisConnectOptions, 'cluster' | 'tlsCaFile' | 'sentinel'> = {}): Redis {
  const sentinel: SentinelSettings | undefined = config.redisSentinels?.length
    ? {
        sentinels: config.redisSentinels,
        name: config.redisSentinelName,
        tls: config.redisSentinelTls,
        ...(config.redisSentinelPassword ? { password: config.redisSentinelPassword } : {}),
      }
    : undefined;
  return createRedis(config.redisUrl, { ...opts, cluster: config.redisCluster, ...(config.redisTlsCa ? { tlsCaFile: config.redisTlsCa } : {}), ...(sentinel ? { sentinel } : {}) });
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
  if (opts.sentinel && (cluster || urls.length > 1)) throw new ConfigError('SLOTQ_REDIS_SENTINELS is set: a Sentinel-managed master is not a Redis Cluster; give one REDIS_URL (for credentials) and unset SLOTQ_REDIS_CLUSTER');
  if (urls.length > 1 && !cluster) throw new ConfigError(`REDIS_URL lists ${urls.length} nodes: set SLOTQ_REDIS_CLUSTER=true for a Redis Cluster, or give one URL`);
  const options: RedisOptions = {
    // Blocking connections wait through outages, as BullMQ requires. Command connections give up after
    // ~13 s of reconnecting (100 ms doubling to 2 s per attempt), so a Redis outage becomes an error
    // (a typed result upstream), never a call that hangs forever.
    maxRetriesPerRequest: opts.blocking ? null : COMMAND_RETRIES,
    // Blocking commands wait on purpose (BullMQ sets its own bounds); every other command has a deadline.
    ...(opts.blocking ? {} : { commandTimeout: COMMAND_TIMEOUT_MS }),
    socketTimeout: opts.blocking ? BLOCKING_SOCKET_TIMEOUT_MS : SOCKET_TIMEOUT_MS,
    keepAlive: KEEP_ALIVE_MS,
    enableReadyCheck: true,
    connectionName: opts.name ?? 'slotq',
    // Reconnecting never gives up (a failover, a restart): only each command's own budget above is bounded.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    reconnectOnError,
  };
  const tls = tlsOptions(urls[0] ?? url, tlsCaFile);
  const client: RedisClient = cluster
    ? clusterClient(urls, options, tls)
    : opts.sentinel
      ? sentinelClient(url, opts.sentinel, options, tls, tlsCaFile)
      : new Redis(url, { ...options, ...(tls ? { tls } : {}) });
  // ioredis reconnects by itself; without a listener it would print every failed attempt to the console.
  client.on('error', (err: Error) => opts.onError?.(err));
  return client as Redis;
}

/**
 * After a failover the old master answers READONLY (demoted to a replica), a restarting one LOADING, and a
 * blocked BLPOP/BZPOPMIN is ended with UNBLOCKED when its server changes role. All three are refusals:
 * the server did not run the command (a script is refused at its first write, before any effect), so
 * reconnecting (to the new master, through Sentinel) and re-sending it (2) cannot run it twice. Any other
 * error is the caller's. A command in flight when the link itself dies (master killed) is another matter:
 * ioredis re-sends it after the reconnect (autoResendUnfulfilledCommands), and if the old master ran it and
 * replicated it before dying it runs twice; slotq's fences (call-fence.ts) are what keep a call itself at
 * most once across that.
 */
const REFUSED_BY_ROLE = /^(READONLY|LOADING|UNBLOCKED)\b/;
const reconnectOnError = (err: Error): 2 | false => (REFUSED_BY_ROLE.test(err.message) ? 2 : false);

/**
 * A client that asks the sentinels for the master and follows it through failovers (failoverDetector:
 * +switch-master makes it reconnect at once instead of when the old link times out). REDIS_URL gives the
 * master's username, password and db, and rediss:// turns on TLS to the master.
 */
function sentinelClient(url: string, s: SentinelSettings, options: RedisOptions, tls: TlsOptions | undefined, caFile: string | undefined): Redis {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.slice(1) || 0);
  return new Redis({
    ...options,
    sentinels: s.sentinels.map(({ host, port }) => ({ host, port })),
    name: s.name,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(db ? { db } : {}),
    ...(s.password ? { sentinelPassword: s.password } : {}),
    ...(tls ? { tls, enableTLSForSentinelMode: true } : {}),
    ...(s.tls ? { sentinelTLS: caFile ? { ca: readCa(caFile) } : {} } : {}),
    failoverDetector: true,
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    sentinelCommandTimeout: 2000,
  });
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
  return { ca: readCa(caFile) };
}

function readCa(caFile: string): Buffer {
  try {
    return readFileSync(caFile);
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
      () => reject(new InternalError(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms: start one (e.g. \`slotq up\` or \`redis-server\`) or set REDIS_URL (and SLOTQ_REDIS_CLUSTER=true for a Redis Cluster, SLOTQ_REDIS_SENTINELS for Sentinel)`)),
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
