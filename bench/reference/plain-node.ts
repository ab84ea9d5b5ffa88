/**
 * The plain-Node reference row: the smallest echo server Node can run, for the benchmark only.
 *
 *   net.createServer((socket) => socket.on('data', (chunk) => socket.write(chunk)))
 *
 * Between the C reference (bench/reference/echo-epoll.c) and a lab it splits the gap in two: C →
 * plain Node is what Node itself costs (libuv, V8, a Buffer per read), plain Node → lab is what
 * the lab's model and its safety nets cost (limits, timeouts, protocol framing, a pool).
 *
 * Simplifications a real server would not make, each one a cost the labs pay and this does not:
 * no connection cap, no idle timeout, no bound on replies the peer does not read (write's return
 * value is ignored, so a client that never reads grows our memory), no protocol parsing. It binds
 * 127.0.0.1 only: an echo service reflects whatever it is sent.
 *
 * Usage: node dist/bench/reference/plain-node.js [--port 0] [--host 127.0.0.1]
 * Prints the labs' "listening on HOST:PORT (model: ...; pid N)" line, so harness/launch.ts
 * starts it like any lab; SIGTERM or SIGINT closes every connection and exits 0.
 */

import net from 'node:net';
import { hideBin, yargs } from '../../shared/yargs.js';
import { given, strictly } from '../../shared/cli.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';

const NAME = 'plain-node';
const MODEL = 'plain Node, one thread, net.Server with no limits';

function main(): void {
  const typed = hideBin(process.argv);
  const argv = strictly(
    yargs(typed)
      .scriptName('node dist/bench/reference/plain-node.js')
      .usage('$0 [options]\n\nThe minimal Node echo server the benchmark compares the labs with.')
      .options({
        host: { type: 'string', default: '127.0.0.1', describe: 'address to bind' },
        port: { type: 'number', default: 0, describe: 'TCP port (0 picks a free one)' },
      })
      .check((args) => {
        if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) {
          throw new UserError(`--port must be a whole number from 0 to 65535, got ${given(args, typed, 'port')}`);
        }
        return true;
      }),
  ).parseSync();

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true); // as the labs do: a 64-byte echo must not wait for Nagle
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a reset peer: 'close' follows, nothing else to do
    socket.on('data', (chunk) => socket.write(chunk));
  });
  server.on('error', (error: NodeJS.ErrnoException) => {
    // Only listen() can fail here (port in use, address not local): the user's to fix.
    exitOnUserError(NAME)(new UserError(`cannot listen on ${argv.host}:${argv.port}: ${error.code ?? error.message}`));
  });
  server.listen(argv.port, argv.host, () => {
    const { address, port } = server.address() as net.AddressInfo;
    console.log(`[${NAME}] listening on ${address}:${port} (model: ${MODEL}; pid ${process.pid})`);
  });

  const stop = () => {
    server.close();
    for (const socket of sockets) socket.destroy();
    process.exitCode = 0;
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

try {
  main();
} catch (error) {
  exitOnUserError(NAME)(error);
}
