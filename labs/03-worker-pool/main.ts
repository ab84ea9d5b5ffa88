// Command-line entry for lab 03: `make lab-03`, or `node dist/labs/03-worker-pool/main.js --help`.
// The common flags come from shared/cli.ts; this lab adds the size of its pool.
import os from 'node:os';
import { given, runLab, type LabFlags } from '../../shared/cli.js';
import type { PoolOptions } from './pool.js';
import { lab } from './server.js';

const poolFlags: LabFlags<PoolOptions> = {
  options: {
    threads: {
      type: 'number',
      default: os.availableParallelism(),
      describe: 'worker threads in the pool (default: this machine\'s cores)',
    },
  },
  check: (argv, args) => {
    const threads = argv.threads;
    return typeof threads === 'number' && Number.isInteger(threads) && threads >= 1 && threads <= 256
      ? undefined
      : `--threads must be a whole number from 1 to 256, got ${given(argv, args, 'threads')}`;
  },
  pick: (argv) => ({ threads: argv.threads as number }),
};

runLab(lab, poolFlags);
