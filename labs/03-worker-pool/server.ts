/**
 * Lab 03: worker pool. One thread owns every socket; a fixed pool of threads does the work.
 *
 * Model: the main thread runs the same evented `net.Server` as lab 04 and frames requests, but
 * hands each job to a `piscina` pool of worker threads (pool.ts) instead of answering it inline.
 * This is the thread-pool half of the classic "reactor + workers" design (and what libuv itself
 * does for file I/O and DNS). Simplification: in the C version of this model a worker would own
 * a connection and do its reads and writes too. Node 20 cannot move a socket into a worker
 * thread, so here only the work moves; the main thread still does all socket I/O.
 *
 * Concurrency: up to `--threads` jobs run in parallel on real cores while the event loop keeps
 * accepting and reading, interleaving every client as lab 04 does.
 *
 * Cost per connection: as lab 04, plus a copy of every request and reply across threads
 * (structured clone) and a queue hop. Each thread costs a V8 isolate (about 10 MB) whether busy
 * or not.
 *
 * How it fails: for light work the hop costs more than the work (piscina's own examples show
 * the pooled server losing to the plain one), and the pool's queue is a second place for load to
 * pile up. Here that queue is bounded (pool.ts): when it is full every socket stops reading until
 * the pool catches up, so the pressure goes back to the clients (and the kernel), not into memory.
 *
 * What to watch: `ps -L -p PID` shows the worker threads; with `--work-us 1000` and several
 * clients, `top -H` shows them all busy while the main thread stays light. At shutdown the lab
 * says how many tasks ran and the most that ran at once.
 *
 * The loop:
 *   1. The event loop reads a chunk from a ready socket and frames it into jobs.
 *   2. Each job is copied to the pool and waits in its queue for a thread.
 *   3. A worker runs the job (the CPU work and the reply) and posts the reply back.
 *   4. The main thread writes replies in request order, however the workers finish.
 */

import net from 'node:net';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import type { Job } from '../../shared/protocol.js';
import { LocalRoom } from '../../shared/room.js';
import { gracefulClose, listen, OpenConnections } from '../../shared/server-kit.js';
import { serveSocket } from '../../shared/socket-connection.js';
import { labInfo } from '../index.js';
import { startPool, type PoolOptions } from './pool.js';

export async function start(options: ServerOptions & PoolOptions): Promise<RunningServer> {
  const { protocol, limits, noDelay, log } = options;
  // The model in one line: the work runs on a pool thread; the event loop only awaits its reply.
  const pool = await startPool(options);
  const handle = (job: Job) => pool.run(job);
  // The room: the main thread owns every socket, so it owns the room too, and does the fan-out
  // itself. Nothing of it runs on the pool: a message is only bytes to copy to sockets, which
  // only this thread can write, and a hop to a worker and back would add a copy and a queue.
  const room = new LocalRoom();

  const connections = new OpenConnections();
  // allowHalfOpen: after a client's FIN we still owe it the echo of everything it sent.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(serveSocket(socket, { protocol, limits, noDelay, log, handle, gate: pool.gate, room }));
  });
  // libuv closes connections beyond this right after accepting them.
  server.maxConnections = options.maxConns;

  const address = await listen(server, options).catch(async (error: unknown) => {
    await pool.destroy();
    throw error;
  });
  const close = gracefulClose(
    {
      stopAccepting: () => server.close(),
      finish: () => connections.stopAll(),
      force: () => connections.destroyAll(),
      drained: () => connections.whenEmpty(),
      release: () => pool.close(),
    },
    options.shutdownTimeoutMs,
  );
  return { address, close };
}

export const lab: Lab<PoolOptions> = { info: labInfo('03-worker-pool'), start };
