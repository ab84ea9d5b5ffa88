/**
 * `make lifecycle`: a TCP socket's life, one system call at a time (walk.ts has the steps).
 *
 *   make lifecycle                 press Enter after each step
 *   make lifecycle ARGS=--auto     run through without stopping (scripts, tests); about 800 lines,
 *                                  so on a terminal page them: make lifecycle ARGS=--auto | less
 *
 * While it waits for Enter, look for yourself from another terminal: the walk prints its port.
 */

import readline from 'node:readline';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { given, strictly } from '../../shared/cli.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { runWalk } from './walk.js';

const NAME = 'lifecycle';

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new UserError('the walk reads /proc and calls Linux system calls: it runs only on Linux');
  const typed = hideBin(process.argv);
  const argv = strictly(
    yargs(typed)
      .scriptName('node dist/tools/lifecycle/main.js')
      .usage(
        '$0 [options]\n\nWalks a TCP connection through its life, one system call per step (socket, bind, listen, ' +
          'connect, accept, read/write, close), showing /proc/self/fd, /proc/net/tcp and ss after each, then two ' +
          'pitfalls: EPIPE/SIGPIPE and EADDRINUSE in TIME_WAIT. Press Enter for the next step.',
      )
      .options({
        auto: { type: 'boolean', default: false, describe: 'run every step without waiting for Enter' },
        port: { type: 'number', default: 0, describe: 'port for the server to bind on 127.0.0.1 (0: the kernel picks a free one)' },
      })
      .check((args) => {
        const port = args.port;
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UserError(`--port must be a whole number from 0 to 65535, got ${given(args, typed, 'port')}`);
        return true;
      }),
  ).parseSync();

  // A pager quit before the end (`| less`, then q) closes the pipe: the walk ends there, quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(0);
  });
  let printed = 0;
  // terminal: false leaves the terminal as it is, so Ctrl-C is the ordinary SIGINT that ends the walk.
  const input = argv.auto ? undefined : readline.createInterface({ input: process.stdin, terminal: false });
  const lines = input?.[Symbol.asyncIterator]();
  let waiting = lines !== undefined;
  try {
    await runWalk({
      port: argv.port,
      print: (text) => {
        printed += text.split('\n').length;
        process.stdout.write(`${text}\n`);
      },
      pause: async () => {
        if (!waiting) return;
        process.stdout.write('  [Enter: next step · Ctrl-C: stop]');
        // At the end of input (a pipe, /dev/null) there is nobody to wait for: run on.
        if ((await lines!.next()).done) waiting = false;
        // A terminal echoes the Enter itself; a pipe does not.
        if (!process.stdin.isTTY) process.stdout.write('\n');
      },
    });
  } finally {
    input?.close();
  }
  // Straight through on a terminal, the walk scrolled past faster than anyone reads: say how to
  // read it, where it is seen (the last line on the screen).
  if (argv.auto && process.stdout.isTTY) {
    process.stdout.write(`(${printed} lines: page through them with \`make lifecycle ARGS=--auto | less\`, or leave out --auto to stop after each step)\n`);
  }
}

main().catch(exitOnUserError(NAME));
