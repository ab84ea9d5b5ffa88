/**
 * Lab 04: evented. One thread, one event loop, every client at once.
 *
 * Model: `net.Server` on libuv, which on Linux is an epoll loop. The thread never waits on one
 * client: it asks the kernel which sockets are ready and does the ready work, one callback at a
 * time, and the work of each request runs inline, on that same thread.
 *
 * Concurrency: interleaving, not parallelism. Every client is open at once and each gets a turn
 * whenever its socket is ready; only one callback runs at any moment.
 *
 * Cost per connection: a socket, its epoll registration, and a few kilobytes of JS objects and
 * buffers. No thread, no process: thousands of idle clients are cheap.
 *
 * How it fails: any CPU work runs on the one thread, so one slow request delays every client
 * (try `--work-us 20000` with two clients). It also uses one core however many the machine has.
 *
 * What to watch: `ss -ltn` shows an empty accept queue however many clients connect, and
 * `ps -L` shows the JS thread serving all of them (plus libuv's and V8's helper threads).
 *
 * The loop, as libuv runs it:
 *   1. epoll_wait() until some socket is ready (a new connection, bytes to read, room to write).
 *   2. For the listening socket: accept every pending connection and register each with epoll.
 *   3. For a readable client: read a chunk, frame it, answer it inline, queue the reply.
 *   4. For a writable client: flush what its queue holds; under the high-water mark, read again.
 */

import net from 'node:net';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { respond, type Job } from '../../shared/protocol.js';
import { LocalRoom } from '../../shared/room.js';
import { gracefulClose, listen, OpenConnections } from '../../shared/server-kit.js';
import { serveSocket } from '../../shared/socket-connection.js';
import { labInfo } from '../index.js';

export async function start(options: ServerOptions): Promise<RunningServer> {
  const { protocol, limits, noDelay, log } = options;
  // The model in one line: the work runs right here, on the event loop's only thread.
  const handle = (job: Job) => respond(job, options.work);
  // The room is a set of connections in this one thread; a message is a loop over them.
  const room = new LocalRoom();

  const connections = new OpenConnections();
  // allowHalfOpen: after a client's FIN we still owe it the echo of everything it sent.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(serveSocket(socket, { protocol, limits, noDelay, log, handle, room }));
  });
  // libuv closes connections beyond this right after accepting them.
  server.maxConnections = options.maxConns;

  const address = await listen(server, options);
  const close = gracefulClose(
    {
      stopAccepting: () => server.close(),
      finish: () => connections.stopAll(),
      force: () => connections.destroyAll(),
      drained: () => connections.whenEmpty(),
    },
    options.shutdownTimeoutMs,
  );
  return { address, close };
}

export const lab: Lab = { info: labInfo('04-evented'), start };
