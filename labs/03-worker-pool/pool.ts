/**
 * Lab 03's pool: a fixed set of worker threads (piscina), the bound on its queue, and the gate
 * that turns a full queue into backpressure on every socket.
 *
 * The pool's queue is a second place for load to pile up (the kernel's socket buffers are the
 * first). Here it is bounded: when it is full the gate closes and every socket stops reading
 * until the pool catches up, so the pressure goes back to the clients and the kernel instead of
 * into this process's memory.
 */

import { once } from 'node:events';
import { Piscina } from 'piscina';
import type { Logger } from '../../shared/log.js';
import type { Job } from '../../shared/protocol.js';
import { Gate } from '../../shared/socket-connection.js';
import type { WorkSpec } from '../../shared/work.js';
import { TaskMeter } from './meter.js';
import type { WorkerInput } from './worker.js';

export interface PoolOptions {
  /** Worker threads in the pool. */
  readonly threads: number;
}

/**
 * Queued jobs per thread before sockets stop reading. A few keep every thread busy between
 * completions; more would only add waiting time and memory.
 */
const QUEUE_PER_THREAD = 4;

export interface WorkerPool {
  /** Runs one job on a thread; its reply comes back when the thread is done. */
  run(job: Job): Promise<Uint8Array>;
  /** Closed while the queue is full: every connection stops reading until it opens. */
  readonly gate: Gate;
  /** Shutdown: says how many tasks ran and the most that ran at once, then stops the threads. */
  close(): Promise<void>;
  /** Stops the threads without a word (the server failed to start). */
  destroy(): Promise<void>;
}

/** Starts the threads and resolves once every one is up: "listening" then means the pool exists. */
export async function startPool(options: PoolOptions & { readonly work: WorkSpec; readonly log: Logger }): Promise<WorkerPool> {
  const { threads, log } = options;
  const meter = new TaskMeter();
  const workerData: WorkerInput = { work: options.work, counters: meter.counters };
  const pool = new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: threads,
    maxThreads: threads,
    // Threads are started once and kept: a fixed pool is the model.
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData,
  });
  // A worker that dies with no task of ours on it (one that fails to start, say, when the process
  // is out of file descriptors) is reported here; without a listener Piscina's 'error' event
  // would take the whole server down. Found by the robust suite (case 8).
  pool.on('error', (error: Error) => log.warn(`pool: ${error.message}`));
  // A worker still starting needs file descriptors of its own (its event loop), and clients
  // accepted meanwhile could take the last ones and make it fail (robust suite, case 8).
  await Promise.all(pool.threads.map((worker) => once(worker, 'online'))).catch(async (error: unknown) => {
    await pool.destroy();
    throw error;
  });

  const queueBound = threads * QUEUE_PER_THREAD;
  const gate = new Gate();
  return {
    gate,
    run(job) {
      const reply = pool.run(job) as Promise<Uint8Array>;
      // Close the gate once the queue is full; the jobs already read still go in (at most one
      // read per connection), so nothing is dropped and the overshoot is bounded.
      if (pool.queueSize >= queueBound) gate.close();
      return reply.finally(() => {
        if (pool.queueSize < queueBound) gate.open();
      });
    },
    async close() {
      log.info(`pool: ${meter.summary(threads)}`);
      await pool.destroy();
    },
    destroy: () => pool.destroy(),
  };
}
