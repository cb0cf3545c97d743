import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import type { TestProject } from 'vitest/node';
import { driver } from '../../tools/testkit/docker.js';

const REDIS_IMAGE = process.env['SLOTQ_TEST_REDIS_IMAGE'] ?? 'slotq-redis:test';
const SANDBOX_IMAGE = process.env['SLOTQ_IMAGE'] ?? 'slotq-sandbox:latest';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let redis: StartedTestContainer | undefined;

/** Checks Docker and the images once, and starts the suite's Redis with testcontainers (unless REDIS_URL is set). */
export async function setup(project: TestProject): Promise<void> {
  const docker = driver();
  try {
    await docker.ping();
  } catch {
    throw new Error('Docker engine is not reachable. Run `bash scripts/provision.sh` (starts dockerd on Debian), or set DOCKER_HOST.');
  }
  for (const image of [SANDBOX_IMAGE, ...(process.env['REDIS_URL'] ? [] : [REDIS_IMAGE])]) {
    if (!(await docker.imageExists(image))) throw new Error(`Image ${image} is missing. Run \`bash scripts/build-images.sh\` to build it.`);
  }
  if (process.env['REDIS_URL']) {
    project.provide('redisUrl', process.env['REDIS_URL']);
    return;
  }
  process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true'; // the Ryuk image cannot be pulled without a registry
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
}
