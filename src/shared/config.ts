import { z } from 'zod';
import { ConfigError } from './errors.js';

const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const runtimeName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a runtime name as dockerd knows it (runc, runsc)');
const runtimeMap = z.union([
  z.record(z.string().min(1), runtimeName),
  z
    .string()
    .regex(/^\s*[^=,\s]+=[A-Za-z0-9_.-]+\s*(,\s*[^=,\s]+=[A-Za-z0-9_.-]+\s*)*$/, 'image=runtime pairs separated by commas, e.g. "python:3.12=runsc,slotq-sandbox:latest=runc"')
    .transform((text) => Object.fromEntries(text.split(',').map((pair) => pair.trim().split('=') as [string, string]))),
]);

const hostPort = /^\s*[A-Za-z0-9_.-]+:\d{1,5}\s*$/;
/** "host:port,host:port" (IPv4 or names), parsed to a list of addresses; or that list itself (a parsed config passed on). */
const sentinelList = z.union([
  z.array(z.object({ host: z.string().min(1), port: intIn(1, 65535) })).min(1),
  z
  .string()
  .refine((text) => text.split(',').every((part) => hostPort.test(part)), 'host:port pairs separated by commas, e.g. "10.0.0.1:26379,10.0.0.2:26379"')
  .transform((text) =>
    text.split(',').map((part) => {
      const [host, port] = part.trim().split(':') as [string, string];
      return { host, port: Number(port) };
    }),
  ),
], { error: 'host:port pairs separated by commas, e.g. "10.0.0.1:26379,10.0.0.2:26379"' });

/** Every setting, its env variable, and its default (contract §8). */
/** The default bound of one inbox message (SLOTQ_REPLY_CHUNK_BYTES): far below Redis's 512 MB bulk limit and its client buffers. */
export const REPLY_CHUNK_BYTES = 4 * 1024 * 1024;

const fields = {
  /** One URL, or a comma-separated list of a Redis Cluster's nodes (any one is enough to find the rest). */
  redisUrl: { env: 'REDIS_URL', schema: z.string().regex(/^rediss?:\/\/[^,\s]+(,\s*rediss?:\/\/[^,\s]+)*$/, 'must start with redis:// or rediss:// (a comma-separated list of them for a Redis Cluster)').default('redis://127.0.0.1:6379') },
  /** Talk to a Redis Cluster (REDIS_URL names any node, or several). */
  redisCluster: { env: 'SLOTQ_REDIS_CLUSTER', schema: z.union([z.boolean(), z.stringbool()]).default(false) },
  /** PEM file of the CA that signed the Redis server's certificate (rediss:// with a private CA). */
  redisTlsCa: { env: 'SLOTQ_REDIS_TLS_CA', schema: z.string().min(1).optional() },
  /** Redis Sentinel: the sentinels' host:port list (comma-separated); set, slotq asks them for the master instead of REDIS_URL's host. */
  redisSentinels: { env: 'SLOTQ_REDIS_SENTINELS', schema: sentinelList.optional() },
  /** The master's name as the sentinels monitor it. */
  redisSentinelName: { env: 'SLOTQ_REDIS_SENTINEL_NAME', schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only').default('mymaster') },
  /** The sentinels' own password (their requirepass); the master's password comes from REDIS_URL. */
  redisSentinelPassword: { env: 'SLOTQ_REDIS_SENTINEL_PASSWORD', schema: z.string().min(1).optional() },
  /** Talk TLS to the sentinels too (with SLOTQ_REDIS_TLS_CA's CA); rediss:// in REDIS_URL decides TLS to the master. */
  redisSentinelTls: { env: 'SLOTQ_REDIS_SENTINEL_TLS', schema: z.union([z.boolean(), z.stringbool()]).default(false) },
  prefix: { env: 'SLOTQ_PREFIX', schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only').default('slotq') },
  image: { env: 'SLOTQ_IMAGE', schema: z.string().min(1).default('slotq-sandbox:latest') },
  slots: { env: 'SLOTQ_SLOTS', schema: intIn(1, 1024).default(4) },
  network: { env: 'SLOTQ_NETWORK', schema: z.string().min(1).default('none') },
  /** OCI runtime of the slot containers (Docker's --runtime): runc, or runsc for gVisor (docs/images.md "Isolation tiers"). */
  runtime: { env: 'SLOTQ_RUNTIME', schema: runtimeName.default('runc') },
  /** Per-image runtime, overriding SLOTQ_RUNTIME: "image=runtime,image=runtime" (e.g. "python:3.12=runsc"). */
  runtimeByImage: { env: 'SLOTQ_RUNTIME_BY_IMAGE', schema: runtimeMap.default({}) },
  memoryMb: { env: 'SLOTQ_MEMORY_MB', schema: intIn(16, 1_048_576).default(2048) },
  /** /workspace and /tmp are size-capped tmpfs (0: plain container filesystem, no cap). Counts toward memory. */
  workspaceMb: { env: 'SLOTQ_WORKSPACE_MB', schema: intIn(0, 1_048_576).default(1024) },
  tmpMb: { env: 'SLOTQ_TMP_MB', schema: intIn(0, 1_048_576).default(256) },
  /** Cap on a slot's writable container layer (/, /root, /var, ...): the engine's storage-opt, else the worker's watcher (rootfs-guard.ts); 0: no cap. */
  rootfsMb: { env: 'SLOTQ_ROOTFS_MB', schema: intIn(0, 1_048_576).default(2048) },
  cpus: { env: 'SLOTQ_CPUS', schema: z.coerce.number().positive().max(1024).default(1) },
  pids: { env: 'SLOTQ_PIDS', schema: intIn(8, 1_000_000).default(256) },
  defaultTimeoutS: { env: 'SLOTQ_DEFAULT_TIMEOUT_S', schema: z.coerce.number().min(1).max(3600).default(30) },
  logLevel: { env: 'SLOTQ_LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') },
  boardPort: { env: 'SLOTQ_BOARD_PORT', schema: intIn(0, 65535).default(3000) },
  /** `slotq board`: address (loopback by default; any other needs boardToken), token, and whether job data is shown. */
  boardHost: { env: 'SLOTQ_BOARD_HOST', schema: z.string().min(1).default('127.0.0.1') },
  boardToken: { env: 'SLOTQ_BOARD_TOKEN', schema: z.string().min(16, 'use at least 16 characters').optional() },
  boardShowJobData: { env: 'SLOTQ_BOARD_SHOW_JOB_DATA', schema: z.union([z.boolean(), z.stringbool()]).default(false) },
  leaseTtlMs: { env: 'SLOTQ_LEASE_TTL_MS', schema: intIn(1000, 86_400_000).default(60_000) },
  workerLostMs: { env: 'SLOTQ_WORKER_LOST_MS', schema: intIn(1000, 600_000).default(10_000) },
  /** How long a stopping worker (SIGTERM) lets calls in flight finish before it abandons them (fenced, outcome unknown). */
  drainTimeoutMs: { env: 'SLOTQ_DRAIN_TIMEOUT_MS', schema: intIn(0, 3_600_000).default(30_000) },
  warmSpares: { env: 'SLOTQ_WARM_SPARES', schema: intIn(0, 256).default(2) },
  /** How calls reach a slot's executor: the attached exec stream, or FIFOs on a shared directory (dockerd copies no call byte). */
  channel: { env: 'SLOTQ_CHANNEL', schema: z.enum(['stream', 'fifo']).default('fifo') },
  /** SLOTQ_CHANNEL=fifo: this process's path of the channel directories, and the engine's path of it when they differ (compose). */
  channelDir: { env: 'SLOTQ_CHANNEL_DIR', schema: z.string().regex(/^\/\S*$/, 'an absolute path').default('/tmp/slotq-channels') },
  channelHostDir: { env: 'SLOTQ_CHANNEL_HOST_DIR', schema: z.string().regex(/^\/\S*$/, 'an absolute path').optional() },
  maxConcurrentCreates: { env: 'SLOTQ_MAX_CONCURRENT_CREATES', schema: intIn(1, 64).default(4) },
  /** Who commands run as: a name or uid[:gid]; unset means the image's own Config.User (root when it has none). */
  user: { env: 'SLOTQ_USER', schema: z.string().regex(/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/, 'a user name or uid, optionally :group or :gid').optional() },
  /** missing: pull only when the image is not on the engine; always: pull at every start; never: fail when missing. */
  pull: { env: 'SLOTQ_PULL', schema: z.enum(['missing', 'always', 'never']).default('missing') },
  /** Mount the image's root filesystem read-only (/workspace, /tmp and HOME stay writable). */
  readOnlyRootfs: { env: 'SLOTQ_READ_ONLY_ROOTFS', schema: z.union([z.boolean(), z.stringbool()]).default(false) },
  /** `slotq gateway` (HTTP/JSON front for other languages): port, address, bearer token, session TTL, body cap. */
  gatewayPort: { env: 'SLOTQ_GATEWAY_PORT', schema: intIn(0, 65535).default(9001) },
  gatewayHost: { env: 'SLOTQ_GATEWAY_HOST', schema: z.string().min(1).default('127.0.0.1') },
  gatewayToken: { env: 'SLOTQ_GATEWAY_TOKEN', schema: z.string().min(16, 'use at least 16 characters').optional() },
  gatewaySessionTtlS: { env: 'SLOTQ_GATEWAY_SESSION_TTL_S', schema: z.coerce.number().min(1).max(86_400).default(60) },
  /** Worker → producer: a job's results travel in inbox messages of at most this many bytes (a single larger result goes alone). */
  replyChunkBytes: { env: 'SLOTQ_REPLY_CHUNK_BYTES', schema: intIn(1024, 256 * 1024 * 1024).default(REPLY_CHUNK_BYTES) },
  gatewayMaxBodyBytes: { env: 'SLOTQ_GATEWAY_MAX_BODY_BYTES', schema: intIn(1024, 1_073_741_824).default(32 * 1024 * 1024) },
} as const;

type Fields = typeof fields;
export type SlotqConfig = Readonly<{ [K in keyof Fields]: z.output<Fields[K]['schema']> }>;
export type SlotqOptions = Partial<{ [K in keyof Fields]: z.input<Fields[K]['schema']> }>;
export const CONFIG_ENV_VARS: Readonly<Record<keyof Fields, string>> = Object.fromEntries(
  Object.entries(fields).map(([k, f]) => [k, f.env]),
) as Record<keyof Fields, string>;

/** One setting: its env variable and its zod schema (which holds the default). */
export type EnvField = Readonly<{ env: string; schema: z.ZodType }>;

/**
 * The one env loader: parses each field from options (which win) or the environment (an empty
 * variable counts as unset), with zod; freezes the result.
 * Throws a ConfigError naming the offending variable or option.
 */
export function parseEnvFields(table: Readonly<Record<string, EnvField>>, options: object = {}, env: NodeJS.ProcessEnv = process.env): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [key, { env: name, schema }] of Object.entries(table)) {
    const fromOpt = (options as Record<string, unknown>)[key];
    const raw = fromOpt !== undefined ? fromOpt : env[name] === '' ? undefined : env[name];
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const source = fromOpt !== undefined ? `option ${key}` : `environment variable ${name}`;
      throw new ConfigError(`Invalid ${source}=${JSON.stringify(raw)}: ${z.prettifyError(parsed.error).replace(/^✖ /, '')}`);
    }
    out[key] = parsed.data;
  }
  return Object.freeze(out);
}

/** Parses options (which win) and environment variables once (parseEnvFields over the table above). */
export function loadConfig(options: SlotqOptions = {}, env: NodeJS.ProcessEnv = process.env): SlotqConfig {
  return parseEnvFields(fields, options, env) as SlotqConfig;
}

/** The runtime a worker's containers of this image run under: SLOTQ_RUNTIME_BY_IMAGE's entry, else SLOTQ_RUNTIME. */
export const runtimeFor = (c: Pick<SlotqConfig, 'runtime' | 'runtimeByImage'>, image: string): string => c.runtimeByImage[image] ?? c.runtime;
