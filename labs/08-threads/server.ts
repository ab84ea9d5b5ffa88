/**
 * Lab 08: threads that own their connections. A thread blocks in accept(), and each client is
 * served by a thread of its own that blocks in read() and write(), as a C server's threads do.
 *
 * Model: the one every threads-against-events argument is about (UNIX Network Programming ch. 30).
 * `--threads per-connection` (the default): one thread sleeps in accept(); for each client the
 * main thread starts a new thread (a worker_threads Worker) that owns the client's descriptor,
 * serves it with blocking calls until it closes, and ends. `--threads N` (prethreaded): N threads
 * each sleep in accept() on the one listening socket; the kernel wakes one of them per connection
 * (no thundering herd: a blocking accept() queues its sleepers exclusively), and that thread
 * serves the client until it leaves, then accepts again. Client N+1 waits in the kernel's accept
 * queue, exactly as lab 01's second client does, until one of the N is free.
 *
 * Concurrency: the kernel's. Every client has a thread, and the scheduler runs whichever threads
 * have something to do (on every core): no loop of ours decides who goes next. The thread
 * blocking in accept and those serving are made with the same koffi bindings as lab 01
 * (shared/libc.ts), each called synchronously from its own thread; thread.ts is a thread's life.
 *
 * Cost per connection: a thread, and with it a whole V8 isolate and libuv loop (a Worker is not a
 * bare pthread): about 8 MB of resident memory, four descriptors and tens of milliseconds to
 * start (README: measured), against a C thread's stack, reserved but barely touched, and tens of
 * microseconds. Per-connection pays the start-up on every connect; the pool pays it once, and
 * keeps N threads' memory busy or not. `--max-conns` caps the threads (default 100, for memory).
 *
 * How it fails: memory with many idle clients (each holds a thread and an isolate), and a slow
 * client holds a thread (in the pool, one of N: N slow clients and nobody else is served). Chat
 * shows the model's head-of-line blocking: a sender's thread writes to every member's socket
 * itself, so one member that never reads stalls the room until its send timeout cuts it off
 * (room.ts).
 *
 * What to watch: `ps -L -o tid,comm,stat,wchan:20 -p PID` (a thread per client, "lab08
 * connection", sleeping in the kernel), `ls /proc/PID/task | wc -l`, `top -H -p PID`, and make
 * watch LAB=08.
 *
 * The main thread, step by step:
 *   1. A blocking listening socket (the kit's start-up, shared/kit/start.ts), and the table of
 *      connections in shared memory (table.ts); --max-conns is its size.
 *   2. per-connection: starts the acceptor thread; each client it posts gets a new thread.
 *      prethreaded: starts N pool threads. "listening" is printed once they sleep in accept().
 *   3. Shutdown, in the three steps every lab takes (shared/server-kit.ts gracefulClose):
 *      stop accepting: shutdown(SHUT_RD) on the listening socket wakes every thread asleep in
 *      accept() (it fails with EINVAL), and the kernel resets whoever waits in the queue;
 *      finish: the state in shared memory says stopping, and shutdown(SHUT_RD) wakes the threads
 *      whose connection would end at once (a chat member, http between requests: `endsOnStop`),
 *      to finish it; an echo stream is left to its client;
 *      force, at the deadline: shutdown(SHUT_RDWR) on every socket still open wakes every
 *      thread asleep in read() or write(), which closes its connection and ends.
 *   Why shutdown() and not close(): a thread asleep in read() holds a reference to the socket,
 *   and close() from another thread only drops the descriptor number: the read sleeps on, the
 *   socket stays open, and the process cannot exit. shutdown() acts on the socket itself, and
 *   wakes every call waiting on it.
 */

import { Worker } from 'node:worker_threads';
import type { CopyOptions } from '../../shared/file-send.js';
import type { Ground } from '../../shared/kit/server.js';
import { type HandRunning, startByHand } from '../../shared/kit/start.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { labInfo } from '../index.js';
import { FORCED, STOPPING, ThreadTable } from './table.js';
import type { Accepted, FromThread, ThreadConfig } from './thread.js';

type Libc = typeof import('../../shared/libc.js');

export interface ThreadsOptions {
  /** One thread per connection, started at its connect; or a pool of N threads, started at once. */
  readonly threads: 'per-connection' | number;
}

/** Most pool threads a user may ask for: each is an isolate of about 8 MB. */
export const MAX_THREADS = 1024;

const LAB = labInfo('08-threads');
const THREAD_SCRIPT = new URL('./thread.js', import.meta.url);

export function start(options: ServerOptions & ThreadsOptions & CopyOptions): Promise<RunningServer> {
  return startByHand(
    // turnAway: the accepting threads keep a spare descriptor each (thread.ts), not the main thread.
    { name: 'lab 08', calls: 'the Linux socket API from its threads', turnAway: false, blocking: true, build: (ground) => new ThreadsServer(ground) },
    options,
  );
}

export const lab: Lab<ThreadsOptions & CopyOptions> = { info: LAB, start };

class ThreadsServer implements HandRunning {
  readonly ready: Promise<void>;
  readonly #libc: Libc;
  readonly #options: ServerOptions & ThreadsOptions & CopyOptions;
  readonly #table: ThreadTable;
  readonly #listenFd: number;
  readonly #threads = new Set<Worker>();
  readonly #peek = new Uint8Array(1);

  #accepting = true;
  #onReady!: () => void;
  #onDrained: (() => void) | undefined;

  constructor(ground: Ground<ThreadsOptions & CopyOptions>) {
    this.#libc = ground.libc;
    this.#options = ground.options;
    this.#listenFd = ground.listenFd;
    // Step 1. A slot per connection allowed: the cap, and what the shutdown walks.
    this.#table = new ThreadTable(ground.options.maxConns);
    this.ready = new Promise((resolve) => {
      this.#onReady = resolve;
    });
  }

  /** Step 2, then waits until every thread has ended (after the shutdown), and closes the listening socket. */
  async run(): Promise<void> {
    const drained = new Promise<void>((resolve) => {
      this.#onDrained = resolve;
    });
    const { threads } = this.#options;
    // One at a time: a thread still starting opens descriptors of its own (its loop, the modules
    // it loads), and under a tight descriptor limit N of them starting at once may not all fit.
    const count = threads === 'per-connection' ? 1 : threads;
    for (let index = 0; index < count && this.#accepting; index++) {
      if (!(await this.#started(threads === 'per-connection' ? 'acceptor' : 'pool', index))) {
        this.#options.log.warn(`could not start the ${threads === 'per-connection' ? 'acceptor' : `pool thread ${index}`}: serving with ${index} of ${count}`);
        break;
      }
    }
    this.#onReady();
    await drained;
    this.#libc.close(this.#listenFd);
  }

  /** Starts an accepting thread; true once it sleeps in accept(), false if it ended first. */
  #started(role: 'acceptor' | 'pool', index: number): Promise<boolean> {
    return new Promise((resolve) => this.#start(role, index, undefined, resolve));
  }

  /**
   * A new thread, in `role`; `client`: the connection it serves (per-connection); `ready`: told
   * whether an accepting thread came up. One that ends after it came up is replaced while the
   * server accepts; one that never came up is not (a loop of failing starts would spin).
   */
  #start(role: ThreadConfig['role'], index: number, client?: Accepted, ready?: (up: boolean) => void): void {
    const { log, ...options } = this.#options;
    const config: ThreadConfig = { role, index, listenFd: this.#listenFd, options, labId: LAB.id, quiet: log.quiet, table: this.#table.memory, ...(client ? { client } : {}) };
    let thread: Worker;
    try {
      thread = new Worker(THREAD_SCRIPT, { workerData: config });
    } catch (error) {
      // Out of memory or descriptors for a new isolate: the client cannot be served.
      log.warn(`could not start a thread: ${error instanceof Error ? error.message : String(error)}`);
      if (client) {
        this.#table.abandon(this.#libc, client);
        this.#table.starting(-1);
      }
      ready?.(false);
      this.#ended();
      return;
    }
    this.#threads.add(thread);
    // Until it is up, the descriptors it will open are not open yet: counted as taken (the
    // acceptor counted a connection's thread already, when it accepted the client: thread.ts).
    if (!client) this.#table.starting(+1);
    let up = false;
    thread.on('message', (message: FromThread) => {
      if (message.type === 'ready') {
        up = true;
        this.#table.starting(-1);
        ready?.(true);
      } else this.#handOn(message.client);
    });
    thread.on('error', (error) => log.warn(`${role} thread failed: ${error.message}${client ? `; its client ${client.peer} is closed` : ''}`));
    thread.on('exit', () => {
      this.#threads.delete(thread);
      // What a thread that failed to start, or died, left open (one that ended well closed it).
      // The acceptor's slots are its clients' threads', not its own.
      if (client) this.#table.abandon(this.#libc, client);
      else if (role === 'pool') this.#table.abandon(this.#libc, { owner: thread.threadId });
      if (!up) {
        this.#table.starting(-1);
        ready?.(false);
      }
      else if (role !== 'connection' && this.#accepting) {
        log.warn(`${role} thread ${index} ended while the server was accepting; starting a new one`);
        this.#start(role, index);
      }
      this.#ended();
    });
  }

  /**
   * per-connection: a thread for the client the acceptor took, unless it has left already (a
   * port scan, a reset): one recv(MSG_PEEK | MSG_DONTWAIT) of a byte, which reads nothing, against
   * the tens of milliseconds a thread takes to start (lab 02 looks the same way before a fork).
   * 0 is a FIN with nothing before it: closing is the whole answer.
   */
  #handOn(client: Accepted): void {
    const libc = this.#libc;
    const got = libc.recv(client.fd, this.#peek, 1, libc.MSG_PEEK | libc.MSG_DONTWAIT);
    const error = got < 0 ? libc.errno() : 0;
    if (got === 0 || (got < 0 && error !== libc.EAGAIN && error !== libc.EINTR)) {
      this.#options.log.client(`client ${client.peer} left before a thread was started for it`);
      this.#table.abandon(libc, client);
      this.#table.starting(-1);
      return;
    }
    this.#start('connection', 0, client);
  }

  #ended(): void {
    if (!this.#accepting && this.#threads.size === 0) this.#onDrained?.();
  }

  /** Step 3, stop accepting: every thread asleep in accept() wakes (EINVAL) and ends, or serves on. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    this.#libc.shutdown(this.#listenFd, this.#libc.SHUT_RD);
    this.#onReady();
    this.#ended();
  }

  /** Step 3, finish: stopping, and the threads whose connection would end at once are woken to end it. */
  finishAll(): void {
    this.#table.state = STOPPING;
    this.#table.wake(this.#libc, this.#libc.SHUT_RD, 'ends-on-stop');
  }

  /** Step 3, force: every thread asleep on a socket is woken, and closes it. */
  force(): void {
    this.#table.state = FORCED;
    this.#table.wake(this.#libc, this.#libc.SHUT_RDWR, 'all');
  }
}
