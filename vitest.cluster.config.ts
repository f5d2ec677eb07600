import { defineConfig } from 'vitest/config';

/** `npm run test:cluster`: the production shape on a real cluster (test/cluster/). */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    pool: 'forks',
  },
});
