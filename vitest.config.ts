import { defineConfig } from 'vitest/config';

import path from 'node:path';

export default defineConfig({
  resolve: { alias: { 'allot/workflow': path.resolve(__dirname, 'src/workflow.ts') } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    // The Temporal client retries a failed call from a timer that closing the connection does not
    // clear: a background call of an agent (a heartbeat that timed out under load) can retry after
    // a test has closed its connection, and throws there. Only that teardown error is ignored.
    onUnhandledError: (error: Error) =>
      !(/Channel has been shut down/.test(error.message ?? '') && /grpc-retry/.test(error.stack ?? '')),
  },
});
