import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Integration files share one dev server; run files one at a time on 2 cores.
    fileParallelism: false,
    pool: 'forks',
  },
});
