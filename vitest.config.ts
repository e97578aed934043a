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
  },
});
