// Command-line entry for lab 06: `make lab-06`, or `node dist/labs/06-loop-per-core/main.js --help`.
// The common flags come from shared/cli.ts; this lab adds how many loops, and how clients reach them.
import os from 'node:os';
import { given, oneOf, runLab, type LabFlags } from '../../shared/cli.js';
import { plural } from '../../shared/log.js';
import { BALANCES, lab, MAX_WORKERS, type Balance, type LoopOptions } from './server.js';

const loopFlags: LabFlags<LoopOptions> = {
  options: {
    workers: {
      type: 'number',
      default: os.availableParallelism(),
      describe: "event loops, one worker thread each (default: this machine's cores)",
    },
    balance: {
      type: 'string',
      default: 'handoff',
      describe:
        "how connections reach the loops: handoff (one acceptor deals them out in turn, as Node's cluster does), " +
        'shared (every loop accepts from one socket), reuseport (a socket per loop; the kernel hashes)',
    },
  },
  check: (argv, args) => {
    const workers = argv.workers;
    const valid = typeof workers === 'number' && Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS;
    return valid ? oneOf(argv, args, 'balance', BALANCES) : `--workers must be a whole number from 1 to ${MAX_WORKERS}, got ${given(argv, args, 'workers')}`;
  },
  pick: (argv) => ({ workers: argv.workers as number, balance: argv.balance as Balance }),
  mode: ({ workers, balance }) => `${plural(workers, 'worker thread')}, connections spread by ${balance}`,
};

runLab(lab, loopFlags);
