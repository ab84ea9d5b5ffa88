// Command-line entry for lab 05: `make lab-05`, or `node dist/labs/05-event-loop/main.js --help`.
import { oneOf, runLab, type LabFlags } from '../../shared/cli.js';
import { checkCopy, COPY_OPTION } from '../../shared/copy-flags.js';
import type { CopyMode } from '../../shared/file-send.js';
import { type LoopOptions, MUXES, type Mux, type Trigger, TRIGGERS } from './poller.js';
import { lab } from './server.js';

const loopFlags: LabFlags<LoopOptions> = {
  options: {
    mux: {
      type: 'string',
      default: 'epoll',
      describe:
        'epoll, poll or select. epoll: the kernel returns only the ready sockets; poll: every open socket is passed and scanned on every wake-up; ' +
        'select: the same with fd_set bitmaps, and no descriptor at or over FD_SETSIZE (1024)',
    },
    trigger: {
      type: 'string',
      default: 'level',
      describe:
        'level, edge or oneshot (epoll only). level: a socket is reported while readable; edge: once per arrival, so each client is read until EAGAIN; ' +
        'oneshot: once, then not again until re-armed with EPOLL_CTL_MOD (EPOLLONESHOT)',
    },
    drain: {
      type: 'boolean',
      default: true,
      describe:
        'read until EAGAIN in edge mode. --no-drain is a DEMONSTRATION OF A BUG: one read per wake-up, so in edge mode ' +
        'bytes left behind one read wait until the client sends again (or for good, once they fill the receive window)',
    },
    ...COPY_OPTION,
    rearm: {
      type: 'boolean',
      default: true,
      describe:
        're-arm each client with EPOLL_CTL_MOD after its event in oneshot mode. --no-rearm is a DEMONSTRATION OF A BUG: ' +
        'a client is reported once, so its first message is echoed and the next ones never are',
    },
  },
  check: (argv, args) =>
    oneOf(argv, args, 'mux', MUXES) ??
    oneOf(argv, args, 'trigger', TRIGGERS) ??
    (argv.trigger === 'edge' && argv.mux !== 'epoll' ? `--trigger edge needs --mux epoll: ${argv.mux}(2) is level-triggered only` : undefined) ??
    (argv.trigger === 'oneshot' && argv.mux !== 'epoll' ? '--trigger oneshot needs --mux epoll: EPOLLONESHOT is epoll\'s' : undefined) ??
    checkCopy(argv, args),
  pick: (argv) => ({
    mux: argv.mux as Mux,
    trigger: argv.trigger as Trigger,
    drain: argv.drain as boolean,
    rearm: argv.rearm as boolean,
    copy: argv.copy as CopyMode,
  }),
  // "epoll, edge-triggered": poll and select (level-triggered only) say so too, which is what they do.
  mode: ({ mux, trigger, drain, rearm }) => `${mux}, ${trigger}-triggered${drain ? '' : ', --no-drain'}${rearm === false ? ', --no-rearm' : ''}`,
  notes: ({ trigger, drain, rearm }) => [
    ...(drain
      ? []
      : [
          `--no-drain: a demonstration of a bug: each client is read once per wake-up${
            trigger === 'edge'
              ? '; in edge mode bytes left behind one read wait until the client sends again, or for good once they fill the receive window'
              : ' (harmless in level mode: the socket is reported again while bytes remain)'
          }`,
        ]),
    ...(trigger === 'oneshot' && rearm === false
      ? [
          '--no-rearm: a demonstration of a bug: a client is not re-armed with EPOLL_CTL_MOD after its event, so EPOLLONESHOT ' +
            'has disabled it for good: its first message is answered, the next ones never are',
        ]
      : []),
  ],
};

runLab(lab, loopFlags);
