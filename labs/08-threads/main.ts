// Command-line entry for lab 08: `make lab-08`, or `node dist/labs/08-threads/main.js --help`.
// The common flags come from shared/cli.ts; this lab adds how its threads are made, and --copy.
import { given, runLab, type LabFlags } from '../../shared/cli.js';
import { checkCopy, COPY_OPTION } from '../../shared/copy-flags.js';
import type { CopyMode, CopyOptions } from '../../shared/file-send.js';
import { plural } from '../../shared/log.js';
import { lab, MAX_THREADS, type ThreadsOptions } from './server.js';

const PER_CONNECTION = 'per-connection';

const threadFlags: LabFlags<ThreadsOptions & CopyOptions> = {
  options: {
    threads: {
      type: 'string',
      default: PER_CONNECTION,
      describe: `${PER_CONNECTION}: a new thread for each client, started at its connect; N: a pool of N threads started at once, each blocking in accept() (prethreaded)`,
    },
    ...COPY_OPTION,
  },
  check: (argv, args) => {
    const threads = String(argv.threads);
    const count = Number(threads);
    const valid = threads === PER_CONNECTION || (/^\d+$/.test(threads) && count >= 1 && count <= MAX_THREADS);
    return valid ? checkCopy(argv, args) : `--threads must be ${PER_CONNECTION} or a whole number from 1 to ${MAX_THREADS}, got ${given(argv, args, 'threads')}`;
  },
  pick: (argv) => ({ threads: argv.threads === PER_CONNECTION ? PER_CONNECTION : Number(argv.threads), copy: argv.copy as CopyMode }),
  mode: ({ threads }) => (threads === PER_CONNECTION ? 'a thread per connection, started at its connect' : `prethreaded: ${plural(threads, 'thread')} blocking in accept()`),
};

runLab(lab, threadFlags);
