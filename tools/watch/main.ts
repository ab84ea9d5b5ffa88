/**
 * `make watch PORT=8080`: a live view of one port, redrawn several times a second until `q` or
 * Ctrl-C. It shows what `ss -ltn`, `ss -tn` and `ps` would, in one screen: the listening
 * socket's accept queue, every connection by where it waits, and the server's processes, found
 * from the socket rather than by name (so two copies of a lab never get mixed up).
 *
 * Works with any server on the port, not only the labs. Not a terminal (a pipe, a test): each
 * frame is printed in turn, and `--frames N` stops after N.
 */

import { emitKeypressEvents } from 'node:readline';
import logUpdate from 'log-update';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { given, strictly } from '../../shared/cli.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { PortCollector } from './collect.js';
import { advance, renderScreen, type ViewState } from './view.js';

function parse() {
  const args = hideBin(process.argv);
  return strictly(
    yargs(args)
      .scriptName('make watch')
      .usage('$0 [PORT=8080] [HOST=…] [ARGS="--interval 250"]\n\nA live view of one TCP port: accept queue, connections by state, server processes.')
      .options({
        port: { type: 'number', default: 8080, describe: 'the port to watch' },
        host: { type: 'string', describe: 'only sockets on this local address (default: every address)' },
        interval: { type: 'number', default: 250, describe: 'ms between frames' },
        frames: { type: 'number', describe: 'stop after this many frames (default: until q or Ctrl-C)' },
      })
      .check((argv) => {
        if (!Number.isInteger(argv.port) || argv.port < 1 || argv.port > 65535) throw new UserError(`--port must be a whole number from 1 to 65535, got ${given(argv, args, 'port')}`);
        if (!Number.isFinite(argv.interval) || argv.interval < 50) throw new UserError(`--interval must be at least 50 ms, got ${given(argv, args, 'interval')}`);
        if (argv.frames !== undefined && (!Number.isInteger(argv.frames) || argv.frames < 1)) throw new UserError(`--frames must be a whole number of at least 1, got ${given(argv, args, 'frames')}`);
        return true;
      }),
  ).parseSync();
}

function main(): void {
  if (process.platform !== 'linux') throw new UserError('the live view reads /proc: it needs Linux');
  const argv = parse();
  const collector = new PortCollector(argv.port, argv.host);
  const tty = process.stdout.isTTY === true;
  let state: ViewState | undefined;
  let frames = 0;

  const draw = () => {
    state = advance(state, collector.sample(performance.now()));
    const screen = renderScreen(state, { width: process.stdout.columns || 100, rowsPerPlace: tty ? Math.max(3, Math.floor(((process.stdout.rows || 40) - 20) / 3)) : 8 });
    if (tty) logUpdate(screen);
    else process.stdout.write(`${screen}\n\n`);
    frames++;
    if (argv.frames !== undefined && frames >= argv.frames) stop();
  };
  const timer = setInterval(draw, argv.interval);

  const stop = () => {
    clearInterval(timer);
    if (tty) logUpdate.done();
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (process.stdin.isTTY) {
    emitKeypressEvents(process.stdin);
    process.stdin.setRawMode(true);
    process.stdin.on('keypress', (_text: string, key: { name?: string; ctrl?: boolean }) => {
      if (key.name === 'q' || (key.ctrl && key.name === 'c')) stop();
    });
  }
  draw();
}

try {
  main();
} catch (error) {
  exitOnUserError('watch')(error);
}
