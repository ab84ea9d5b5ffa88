import { statSync } from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take most of the suite's time: the robust families (a minute or two each) and
 * the per-lab suites, and test/sandbox.test.ts (every lab, variant and protocol). They start first, so the workers end together instead of one of them
 * finishing a long file alone at the end.
 */
const HEAVY = /(^|\/)test\/robust\/|(^|\/)test\/(labs|sandbox)\.test\.ts$|(^|\/)labs\/[^/]+\/model\.test\.ts$/;

/**
 * Heavy files first, then longest first by the last run's durations where vitest has them (in
 * node_modules/.vite), else largest first (a fresh clone has no durations). vitest's own order
 * compares durations with sizes when only some files have a duration, which put a 90 s file last.
 */
class HeavyFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cache = this.ctx.cache;
    const key = (file: TestSpecification) => {
      const relative = path.relative(this.ctx.config.root, file.moduleId);
      const duration = cache.getFileTestResults(`${file.project.name}:${relative}`)?.duration ?? -1;
      return { heavy: HEAVY.test(relative) ? 1 : 0, duration, size: statSync(file.moduleId).size };
    };
    const keyed = files.map((file) => ({ file, ...key(file) }));
    keyed.sort((a, b) => b.heavy - a.heavy || b.duration - a.duration || b.size - a.size);
    return keyed.map(({ file }) => file);
  }
}

export default defineConfig({
  test: {
    // Each lab's own model test lives in its folder (labs/ID/model.test.ts).
    include: ['test/**/*.test.ts', 'labs/**/*.test.ts'],
    // Three files at a time on the 2-core machine the suite is held to: much of a robust case is
    // waiting (for a timeout, a deadline, a slow reader), not computing, and with two files the
    // cores were busy about 70% of the time (15 CPU minutes in a 10.5-minute run); within a file,
    // tests run one after another. Every bound in the tests is a generous limit on a noisy
    // machine, never a synchronization or a speed target.
    fileParallelism: true,
    maxWorkers: 3,
    sequence: { sequencer: HeavyFirst },
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
