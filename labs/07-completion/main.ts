// Command-line entry for lab 07: `make lab-07`, or `node dist/labs/07-completion/main.js --help`.
import { oneOf, runLab, type LabFlags } from '../../shared/cli.js';
import { type Recv, RECVS, RING_COPIES, type RingCopy, type RingOptions, type Submit, SUBMITS } from './ring.js';
import { lab } from './server.js';

const ringFlags: LabFlags<RingOptions> = {
  options: {
    submit: {
      type: 'string',
      default: 'batch',
      describe: 'batch or each. batch: one io_uring_enter per loop turn submits every queued operation; each: one io_uring_enter per operation',
    },
    recv: {
      type: 'string',
      default: 'multishot',
      describe:
        'multishot or single. multishot: one RECV per client keeps completing, into buffers the kernel picks from a registered ring; ' +
        "single: one RECV into the client's own buffer, re-armed after each completion",
    },
    sqpoll: {
      type: 'boolean',
      default: false,
      describe: 'a kernel thread polls the submission ring (IORING_SETUP_SQPOLL): submitting is a store to memory, no system call',
    },
    copy: {
      type: 'string',
      default: 'read-send',
      describe:
        'files: how a file reaches the socket. read-send: a READ entry into a buffer of the lab, then a SEND of it; ' +
        'splice: a SPLICE entry from the file into a pipe, then one from the pipe into the socket (no copy through the process)',
    },
    'reuse-early': {
      type: 'boolean',
      default: false,
      describe:
        'DEMONSTRATION OF A BUG, off by default: a send buffer is reused as soon as its SEND is queued, before its completion, ' +
        'so the kernel sends bytes of a later reply (clients get echoes that are not theirs)',
    },
  },
  check: (argv, args) => oneOf(argv, args, 'submit', SUBMITS) ?? oneOf(argv, args, 'recv', RECVS) ?? oneOf(argv, args, 'copy', RING_COPIES),
  pick: (argv) => ({
    submit: argv.submit as Submit,
    recv: argv.recv as Recv,
    sqpoll: argv.sqpoll as boolean,
    reuseEarly: argv['reuse-early'] as boolean,
    ringCopy: argv.copy as RingCopy,
  }),
  // "batch submit, multishot recv": the two knobs, then the kernel thread, files' splice and the bug if they are on.
  mode: ({ submit, recv, sqpoll, ringCopy, reuseEarly }) =>
    `${submit} submit, ${recv} recv${sqpoll ? ', sqpoll' : ''}${ringCopy === 'splice' ? ', splice' : ''}${reuseEarly ? ', --reuse-early' : ''}`,
  notes: ({ reuseEarly }) =>
    reuseEarly
      ? [
          '--reuse-early: a demonstration of a bug: each send buffer goes back to the pool when its SEND is queued, not when it completes; ' +
            'the next reply overwrites bytes the kernel has not sent yet, and clients get replies that are not theirs',
        ]
      : [],
};

runLab(lab, ringFlags);
