/**
 * Lab 03: worker pool. One thread owns every socket; a fixed pool of threads does the work.
 *
 * Model: the main thread runs the same evented `net.Server` as lab 04 and frames requests, but
 * hands each job to a `piscina` pool of worker threads instead of answering it inline. This is
 * the thread-pool half of the classic "reactor + workers" design (and what libuv itself does for
 * file I/O and DNS).
 *
 * Simplification: in the C version of this model a worker would own a connection and do its
 * reads and writes too. Node 20 cannot move a socket into a worker thread, so here only the work
 * moves; the main thread still does all socket I/O.
 *
 * The loop:
 *   1. The event loop reads a chunk from a ready socket and frames it into jobs.
 *   2. Each job is copied (structured clone) to the pool and waits in its queue for a thread.
 *   3. A worker runs the job (the CPU work and the reply) and posts the reply back.
 *   4. The main thread writes replies in request order, however the workers finish.
 *
 * Concurrency: up to `--threads` jobs run in parallel on real cores while the event loop keeps
 * accepting and reading. Cost per connection: as lab 04, plus a copy of every request and reply
 * across threads and a queue hop. Each thread costs a V8 isolate (about 10 MB) whether busy or not.
 *
 * How it fails: for light work the hop costs more than the work (piscina's own examples show
 * the pooled server losing to the plain one), and the pool's queue is a second place for load to
 * pile up. Here that queue is bounded: when it is full every socket stops reading until the pool
 * catches up, so the pressure goes back to the clients (and the kernel) instead of into memory.
 *
 * What to watch: `ps -L -p PID` shows the worker threads; with `--work-us 1000` and several
 * clients, `top -H` shows them all busy while the main thread stays light.
 */

import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { Piscina } from 'piscina';
import type { LabFlags } from '../../shared/cli.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import type { Job } from '../../shared/protocol.js';
import { gracefulClose, listen, OpenConnections } from '../../shared/server-kit.js';
import { Gate, serveSocket } from '../../shared/socket-connection.js';
import type { TaskData } from './task.js';

export interface PoolOptions {
  /** Worker threads in the pool. */
  readonly threads: number;
}

/**
 * Queued jobs per thread before sockets stop reading. A few keep every thread busy between
 * completions; more would only add waiting time and memory.
 */
const QUEUE_PER_THREAD = 4;

export async function start(options: ServerOptions & PoolOptions): Promise<RunningServer> {
  const { threads, log } = options;
  // Counters the workers update, for the summary line at shutdown: how many tasks ran and the
  // most that ever ran at the same moment (which can never exceed the pool size).
  const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const taskData: TaskData = { work: options.work, counters };
  const pool = new Piscina({
    filename: new URL('./task.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    // Threads are started once and kept: a fixed pool is the model.
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: taskData,
  });
  // A worker that dies with no task of ours on it (one that fails to start, say, when the process
  // is out of file descriptors) is reported here; without a listener Piscina's 'error' event
  // would take the whole server down. Found by the robust suite (case 8).
  pool.on('error', (error: Error) => log.warn(`pool: ${error.message}`));
  const queueBound = threads * QUEUE_PER_THREAD;
  const gate = new Gate();

  const run = (job: Job): Promise<Uint8Array> => {
    const reply = pool.run(job) as Promise<Uint8Array>;
    // Close the gate once the queue is full; the jobs already read still go in (at most one
    // read per connection), so nothing is dropped and the overshoot is bounded.
    if (pool.queueSize >= queueBound) gate.close();
    return reply.finally(() => {
      if (pool.queueSize < queueBound) gate.open();
    });
  };

  const connections = new OpenConnections();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(serveSocket(socket, { protocol: options.protocol, limits: options.limits, log, handle: run, gate }));
  });
  server.maxConnections = options.maxConns;

  // Every worker is up before the first client can arrive: "listening" means the pool exists.
  // A worker still starting needs file descriptors of its own (its event loop), and clients
  // accepted meanwhile could take the last ones and make it fail (robust suite, case 8).
  const address = await Promise.all(pool.threads.map((worker) => once(worker, 'online')))
    .then(() => listen(server, options))
    .catch(async (error: unknown) => {
      await pool.destroy();
      throw error;
    });
  const close = gracefulClose(
    {
      stopAccepting: () => server.close(),
      finish: () => connections.stopAll(),
      force: () => connections.destroyAll(),
      drained: () => connections.whenEmpty(),
      release: async () => {
        log.info(`pool: ${Atomics.load(counters, 0)} tasks run, at most ${Atomics.load(counters, 2)} at once on ${threads} threads`);
        await pool.destroy();
      },
    },
    options.shutdownTimeoutMs,
  );
  return { address, close };
}

export const lab: Lab<PoolOptions> = { id: '03-worker-pool', model: 'worker pool, one I/O thread + piscina workers', start };

export const poolFlags: LabFlags<PoolOptions> = {
  options: {
    threads: {
      type: 'number',
      default: os.availableParallelism(),
      describe: 'worker threads in the pool (default: this machine\'s cores)',
    },
  },
  check: (argv) => {
    const threads = argv.threads;
    return typeof threads === 'number' && Number.isInteger(threads) && threads >= 1 && threads <= 256
      ? undefined
      : `--threads must be a whole number from 1 to 256, got ${String(threads)}`;
  },
  pick: (argv) => ({ threads: argv.threads as number }),
};
