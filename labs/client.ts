/**
 * `make client`: a line client for machines without `nc`. Type a line and see its echo. With
 * stdin from a pipe it sends all of it, half-closes (FIN), prints the echo and exits once the
 * server has closed its side too: the same sequence `nc -N` performs.
 *
 * Usage: node dist/labs/client.js [--host 127.0.0.1] [--port 8080]
 */

import net from 'node:net';
import { hideBin, yargs } from '../shared/yargs.js';
import { DEFAULTS, given, strictly } from '../shared/cli.js';
import { exitOnUserError, UserError } from '../shared/errors.js';

function parseArgs() {
  const args = hideBin(process.argv);
  try {
    return strictly(
      yargs(args)
        .scriptName('node dist/labs/client.js')
        .usage(
          '$0 [options]\n\nConnects to a running lab (start one with `make lab-04` in another terminal) and echoes what you ' +
            'type, line by line; Ctrl-D sends FIN and waits for the server to close. With stdin from a pipe it sends all of ' +
            'it, half-closes and prints the echo, as `nc -N` does. Through make: `make client PORT=8080 HOST=127.0.0.1`.',
        )
        .options({
          host: { type: 'string', default: DEFAULTS.host, describe: 'server address' },
          port: { type: 'number', default: DEFAULTS.port, describe: 'server port' },
        })
        .check((a) => {
          if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) throw new UserError(`--port must be a whole number from 1 to 65535, got ${given(a, args, 'port')}`);
          return true;
        }),
    ).parseSync();
  } catch (error) {
    return exitOnUserError('client')(error);
  }
}

const argv = parseArgs();

const socket = net.connect({ host: argv.host, port: argv.port, allowHalfOpen: true });
socket.setNoDelay(true);

socket.on('connect', () => {
  if (process.stdin.isTTY) console.error(`connected to ${argv.host}:${argv.port}; type a line and press Enter, Ctrl-D to finish`);
  // pipe() ends the socket (sends FIN) when stdin ends, and the server's echo keeps flowing.
  process.stdin.pipe(socket);
});
socket.pipe(process.stdout);
socket.on('end', () => {
  if (process.stdin.isTTY) console.error('server closed the connection');
  process.stdin.unpipe(socket);
  process.stdin.destroy();
});
socket.on('error', (error: NodeJS.ErrnoException) => {
  const why = error.code === 'ECONNREFUSED' ? 'connection refused (is the lab running? `make lab-04` in another terminal)' : error.message;
  console.error(`client: ${argv.host}:${argv.port}: ${why}`);
  process.exitCode = 1;
  process.stdin.destroy();
});
