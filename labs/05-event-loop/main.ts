// Command-line entry for lab 05: `make lab-05`, or `node dist/labs/05-event-loop/main.js --help`.
import type { LabFlags } from '../../shared/cli.js';
import { runLab } from '../../shared/cli.js';
import { MUXES, type Mux } from './poller.js';
import { lab, type LoopOptions, type Trigger, TRIGGERS } from './server.js';

const loopFlags: LabFlags<LoopOptions> = {
  options: {
    mux: { type: 'string', choices: MUXES, default: 'epoll', describe: 'epoll: the kernel returns only the ready sockets; poll: every socket is passed and scanned on every wake-up' },
    trigger: { type: 'string', choices: TRIGGERS, default: 'level', describe: 'epoll only. level: reported while readable; edge: reported once per arrival, so each client is read until EAGAIN' },
    drain: {
      type: 'boolean',
      default: true,
      describe: 'read until EAGAIN in edge mode. --no-drain is a DEMONSTRATION OF A BUG: one read per wake-up, so in edge mode a client that sends more than one read holds until it sends again',
    },
  },
  check: (argv) =>
    argv.trigger === 'edge' && argv.mux === 'poll'
      ? '--trigger edge needs --mux epoll: poll(2) is level-triggered only'
      : undefined,
  pick: (argv) => ({ mux: argv.mux as Mux, trigger: argv.trigger as Trigger, drain: argv.drain as boolean }),
};

runLab(lab, loopFlags);
