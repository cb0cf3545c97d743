import { inject } from 'vitest';

/**
 * Runs in every test worker before its test file: sets the env slotq reads for the suite's Redis
 * (SLOTQ_REDIS_CLUSTER=true for a Cluster, SLOTQ_REDIS_TLS_CA for TLS; global-setup.ts provides it), so
 * in-process workers and producers, and the processes tests spawn (they inherit process.env), honour it.
 */
for (const [k, v] of Object.entries(inject('redisEnv'))) process.env[k] = v;
