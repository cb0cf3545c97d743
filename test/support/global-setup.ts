import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import type { TestProject } from 'vitest/node';
import { driver } from '../../tools/testkit/docker.js';
import { startRedisCluster, startTlsRedis, type LocalRedis } from './redis-servers.js';

const REDIS_IMAGE = process.env['SLOTQ_TEST_REDIS_IMAGE'] ?? 'slotq-redis:test';
const SANDBOX_IMAGE = process.env['SLOTQ_IMAGE'] ?? 'slotq-sandbox:latest';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** The env slotq reads for that Redis (SLOTQ_REDIS_CLUSTER, SLOTQ_REDIS_TLS_CA); redis-env.ts sets it in every test worker. */
    redisEnv: Record<string, string>;
  }
}

let redis: StartedTestContainer | undefined;
let local: LocalRedis | undefined;

/** SLOTQ_TEST_REDIS=cluster: the whole suite on a local 3-master Redis Cluster; =tls: on a TLS Redis with a password. */
const MODE = process.env['SLOTQ_TEST_REDIS'] ?? '';

/**
 * Checks Docker and the images once, and starts the suite's Redis: with SLOTQ_TEST_REDIS a Cluster or a
 * TLS Redis (redis-servers.ts), else REDIS_URL if set, else a container (testcontainers).
 */
export async function setup(project: TestProject): Promise<void> {
  if (!['', 'cluster', 'tls'].includes(MODE)) throw new Error(`SLOTQ_TEST_REDIS=${MODE}: expected cluster or tls (or unset)`);
  const docker = driver();
  try {
    await docker.ping();
  } catch {
    throw new Error('Docker engine is not reachable. Run `bash scripts/provision.sh` (starts dockerd on Debian), or set DOCKER_HOST.');
  }
  for (const image of [SANDBOX_IMAGE, ...(process.env['REDIS_URL'] ? [] : [REDIS_IMAGE])]) {
    if (!(await docker.imageExists(image))) throw new Error(`Image ${image} is missing. Run \`bash scripts/build-images.sh\` to build it.`);
  }
  process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true'; // the Ryuk image cannot be pulled without a registry (test workers inherit this)
  if (MODE) {
    local = MODE === 'cluster' ? await startRedisCluster() : await startTlsRedis('slotq-suite-password');
    // Set here too, for anything global setup's process starts; test workers get it through redis-env.ts.
    Object.assign(process.env, local.env);
    project.provide('redisUrl', local.url);
    project.provide('redisEnv', local.env);
    return;
  }
  project.provide('redisEnv', {});
  if (process.env['REDIS_URL']) {
    project.provide('redisUrl', process.env['REDIS_URL']);
    return;
  }
  redis = await new GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    .withPullPolicy({ shouldPull: () => false })
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withLabels({ 'org.slotq.test': 'redis' })
    .start();
  project.provide('redisUrl', `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
  await local?.stop();
}
