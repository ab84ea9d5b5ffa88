import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Each lab's own model test lives in its folder (labs/ID/model.test.ts).
    include: ['test/**/*.test.ts', 'labs/**/*.test.ts'],
    // Two files at a time, one per core of the 2-core machine the suite is held to. Most of a
    // robust case is waiting (for a timeout, a deadline, a slow reader), not computing, so two
    // files overlap their waits; within a file, tests run one after another. Every bound in the
    // tests is a generous limit on a noisy machine, never a synchronization or a speed target.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
