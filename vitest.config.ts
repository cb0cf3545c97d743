import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // SLOTQ_TEST_REDIS=cluster|tls: the env for that Redis, set in every test worker.
    setupFiles: ['test/support/redis-env.ts'],
    // Integration files share one Docker engine on a 2-core machine: run them one at a time.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 120_000,
    retry: 0,
    reporters: ['default'],
  },
});
