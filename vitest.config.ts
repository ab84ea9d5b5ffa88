import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'labs/**/*.test.ts'],
    // Each test starts real servers and real clients; on a busy 2-core machine one file at a time
    // keeps them from starving each other. Timeouts are generous bounds, never synchronization.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
