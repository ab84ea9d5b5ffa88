/**
 * One of lab 08's threads (a worker_threads Worker), doing what a thread of a C server does: it
 * blocks. Its role:
 *   acceptor    (--threads per-connection) sleeps in accept() and posts each client's descriptor
 *               to the main thread, which starts a thread for it;
 *   connection  (per-connection) serves the one client it was started for, then ends;
 *   pool        (--threads N) sleeps in accept() on the socket every pool thread shares, serves
 *               the client it got until it leaves, and sleeps in accept() again.
 *
 * Serving is the kit's connection record (shared/kit/connection.ts) driven with blocking calls:
 *   1. read() sleeps until the client sends, its FIN comes, or the socket's receive timeout
 *      (SO_RCVTIMEO, set to the nearest time limit) passes; the bytes go to the conversation.
 *   2. Its replies are written at once: first what the kernel takes without waiting (send with
 *      MSG_DONTWAIT; what it does not take counts against --max-pending, as in every lab), then
 *      write() or sendfile() sleeps until the kernel takes the rest, or the send timeout
 *      (SO_SNDTIMEO, the nearest time limit again) passes. Nothing is read meanwhile: the
 *      client's bytes wait in the kernel, whose window slows it down (backpressure, free).
 *   3. At each wake-up the thread looks at the server's state in shared memory: the main thread
 *      cannot call into a thread asleep in a system call, so it sets the state and then wakes the
 *      sleepers with shutdown(2) on their sockets (server.ts).
 *
 * Nothing here uses koffi's `.async` calls: they run on libuv's pool of 4 threads (UV_THREADPOOL_SIZE),
 * so a fifth connection blocked in an async read() would wait for one of the four to come back,
 * and so would every fs and dns call in the process. A thread per connection means the calls are
 * made from the connection's own thread, synchronously.
 */

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import type { CopyOptions } from '../../shared/file-send.js';
import { ACCEPT_RETRY_MS } from '../../shared/kit/accept.js';
import { HandConnection, READ_BYTES } from '../../shared/kit/connection.js';
import { type Ground, HandServer } from '../../shared/kit/server.js';
import type { ServerOptions } from '../../shared/lab.js';
import { createBlockingLogger, plural } from '../../shared/log.js';
import { cutOffLine } from '../../shared/room.js';
import { CLOSED, overPending } from '../../shared/rules.js';
import { CUT_OFF_REASON, SharedRoom } from './room.js';
import { FORCED, RUNNING, STOPPING, type TableMemory, ThreadTable } from './table.js';

type Libc = typeof import('../../shared/libc.js');

/** What the main thread gives a new thread (everything but the logger, which it makes itself). */
export interface ThreadConfig {
  readonly role: 'acceptor' | 'connection' | 'pool';
  /** The pool thread's number, for its name (ps -L); 0 for the others. */
  readonly index: number;
  readonly listenFd: number;
  readonly options: Omit<ServerOptions, 'log'> & CopyOptions;
  readonly labId: string;
  readonly quiet: boolean;
  readonly table: TableMemory;
  /** connection: the client it serves, accepted by the acceptor. */
  readonly client?: Accepted;
}

/** A client accepted, in its slot of the table: from the acceptor to the main thread, for a new thread. */
export interface Accepted {
  readonly fd: number;
  readonly peer: string;
  readonly slot: number;
  /** The table's number for this connection (table.ts SERIAL). */
  readonly serial: number;
}

/** From a thread to the main thread: it is up (an accepting one about to sleep in accept()), or it accepted a client. */
export type FromThread = { readonly type: 'ready' } | { readonly type: 'accepted'; readonly client: Accepted };

/**
 * A time limit further off than this is armed as this (a socket timeout is a struct timeval, and
 * a month is as good as forever here): the thread wakes, finds no limit passed, and sleeps again.
 */
const LONGEST_WAIT_MS = 30 * 24 * 3600 * 1000;

/**
 * A socket timeout is set again only when the nearest limit moved by more than this: one
 * setsockopt per read would double the system calls of a round trip, and a limit noticed this much
 * late is as good as the kit's sweep (SWEEP_MS) in labs 05 and 07.
 */
const REARM_SLACK_MS = 100;

/**
 * Descriptors a new thread needs: its event loop keeps four (an epoll, an eventfd, a pipe's two
 * ends), and loading its modules opens more for a moment.
 */
const THREAD_DESCRIPTORS = 24;

/**
 * How long the acceptor waits for descriptors to free up before it turns the client (and those
 * queued behind it) away: long enough for clients that come and go to take turns, short for a
 * crowd that holds on.
 */
const DESCRIPTOR_WAIT_MS = 5_000;
/** How often it looks again meanwhile. */
const DESCRIPTOR_RETRY_MS = 50;

/** The soft limit on open files (/proc/self/limits), or undefined where /proc does not say. */
const FD_LIMIT = (() => {
  try {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return limit === undefined ? undefined : Number(limit);
  } catch {
    return undefined;
  }
})();

/** One thread's server: the kit's house (kit/server.ts) for the one connection it serves at a time. */
class BlockingServer extends HandServer<HandConnection, CopyOptions> {
  readonly #table: ThreadTable;
  readonly #sharedRoom: SharedRoom;
  readonly #readBuffer = Buffer.allocUnsafe(READ_BYTES);
  /** The receive and send timeouts armed on the socket served now (ms; -1: not yet). */
  #armed = { receive: -1, send: -1 };
  readonly #timeval = new BigInt64Array(2);
  #stopped = false;
  /** The slot of the connection served now. */
  #slot = -1;

  constructor(ground: Ground<CopyOptions>, table: ThreadTable, room: SharedRoom) {
    super(ground, room);
    this.#table = table;
    this.#sharedRoom = room;
  }

  /** Unused: a thread's life is the blocking calls below, made from its top level. */
  run(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Sleeps in accept() until a client comes (or the listening socket is shut down): the client
   * and its slot in the table, or undefined when this thread is to accept no more.
   */
  accept(): Accepted | undefined {
    const libc = this.libc;
    for (;;) {
      const accepted = this.guard.accept(this.listenFd, performance.now());
      // A blocking listener says 'empty' only once it is shut down (EINVAL): accept no more.
      if (accepted === 'empty') return undefined;
      if (accepted === 'paused') {
        // Out of descriptors with none spare: sleep, the client still in the queue.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ACCEPT_RETRY_MS);
        continue;
      }
      if (config.role === 'acceptor' && !this.#roomForAThread()) {
        // Nobody is served while the descriptors are short: this client and everyone queued behind it are told now.
        libc.close(accepted.fd);
        const others = this.guard.turnAwayAll(this.listenFd);
        this.options.log.warn(`turned ${plural(others + 1, 'client')} away: too few descriptors left to start a thread for ${others === 0 ? 'it' : 'them'}`);
        continue;
      }
      const slot = this.#table.claim(accepted.fd, threadId);
      if (slot !== undefined) {
        // Its thread is as good as starting: counted now, before the next accept looks for room.
        if (config.role === 'acceptor') this.#table.starting(+1);
        return { ...accepted, slot, serial: this.#table.serial(slot) };
      }
      // --max-conns: every slot is taken. Closed at once, as libuv does for lab 04.
      libc.close(accepted.fd);
    }
  }

  /**
   * per-connection: waits, asleep, up to DESCRIPTOR_WAIT_MS for the descriptors a new thread needs
   * (THREAD_DESCRIPTORS) while the process is near its open-file limit; false if they never come.
   * The clients behind wait in the kernel's queue meanwhile, holding none. (A thread that cannot
   * get them fails to start, and Node 20 leaves the epoll descriptor it had made open for good.)
   */
  #roomForAThread(): boolean {
    if (FD_LIMIT === undefined) return true;
    const until = performance.now() + DESCRIPTOR_WAIT_MS;
    for (;;) {
      let open: number;
      try {
        open = readdirSync('/proc/self/fd').length;
      } catch {
        open = FD_LIMIT; // listing them takes a descriptor too: none left
      }
      const left = FD_LIMIT - open - this.#table.starting() * THREAD_DESCRIPTORS;
      if (left >= THREAD_DESCRIPTORS) return true;
      if (performance.now() >= until || this.#table.state !== RUNNING) return false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, DESCRIPTOR_RETRY_MS);
    }
  }

  /** Serves one client on its slot until it leaves, a limit closes it or the server forces it. */
  serve({ fd, peer, slot }: Accepted): void {
    const table = this.#table;
    this.#slot = slot;
    this.#sharedRoom.serve(slot);
    this.#armed = { receive: -1, send: -1 };
    const client = this.admit(fd, peer, performance.now(), (admission) => new HandConnection(admission));
    if (!client) {
      table.close(slot, this.libc);
      return;
    }
    client.conversation.start();
    // A read of 0 bytes that is the main thread's shutdown(2) (or a cut-off's), not the client's FIN.
    const notFin = () => (table.state === STOPPING && !this.#stopped) || table.state === FORCED || this.#sharedRoom.cutOff;
    while (!client.gone) {
      this.#heed(client);
      if (client.failed || (client.closing && client.outbox.empty)) break;
      // Step 1. Asleep in read(); a shutdown wakes it only if it would end the connection at once.
      this.#arm(client, 'receive');
      table.endsOnStop(slot, client.conversation.endsOnStop);
      // Published before the state is read again, as the main thread sets the state before it
      // looks (server.ts): one of the two sees the other, and no stop is slept through.
      const state = table.state;
      const got = state === RUNNING || (state === STOPPING && this.#stopped) ? client.readSome(this.#readBuffer, performance.now(), notFin, () => this.#heed(client)) : false;
      table.endsOnStop(slot, false);
      if (!got) this.#check(client, performance.now());
    }
    this.#finish(client, slot);
  }

  /** Step 3: the server's state (stop once, force), and a cut-off by another member's thread. */
  #heed(client: HandConnection): void {
    const state = this.#table.state;
    if (state === STOPPING && !this.#stopped) {
      this.#stopped = true;
      this.finishAll();
    }
    this.#forcedOrCut(client);
  }

  #forcedOrCut(client: HandConnection): void {
    if (this.#table.state === FORCED) this.force();
    if (this.#sharedRoom.cutOff && !client.failed) {
      this.options.log.warn(cutOffLine(client.record.peer, CUT_OFF_REASON));
      client.fail(CUT_OFF_REASON);
    }
  }

  /** A wait ended with nothing to hand on: bytes other members' threads wrote count as bytes moving. */
  #check(client: HandConnection, now: number): void {
    const written = this.#table.writtenTo(this.#slot).at;
    if (written > client.times.lastMovedAt) client.times.lastMovedAt = written;
    this.overLimit(client, now);
  }

  /**
   * Step 2: the replies, written now. What the kernel does not take at once is over --max-pending,
   * or waited for, asleep in write(), as long as the time limits allow.
   */
  transmit(client: HandConnection): void {
    const libc = this.libc;
    client.flush(libc.MSG_DONTWAIT);
    if (client.failed || client.outbox.empty || overPending(this.options.limits, client.outbox.pending)) return;
    for (;;) {
      this.#arm(client, 'send');
      client.flush();
      if (client.failed || client.outbox.empty) return;
      // The send timeout passed with nothing taken.
      this.#forcedOrCut(client);
      if (client.failed) return;
      if (this.#sharedRoom.joined) {
        // A member's socket has the room's send timeout, which every writer to it keeps.
        this.options.log.warn(cutOffLine(client.record.peer, CUT_OFF_REASON));
        client.fail(CUT_OFF_REASON);
        return;
      }
      if (this.overLimit(client, performance.now())) return;
    }
  }

  /** The conversation is done: closed by #finish once the outbox is written (it always is, by transmit). */
  closeWhenSent(): void {}

  /** Failed: the loop in serve() sees it and closes the socket. */
  abandon(): void {}

  /**
   * Arms SO_RCVTIMEO or SO_SNDTIMEO with the time left to the nearest limit, when it has moved
   * by more than REARM_SLACK_MS. A room member's send timeout is the room's (room.ts): left alone.
   */
  #arm(client: HandConnection, way: 'receive' | 'send'): void {
    if (way === 'send' && this.#sharedRoom.joined) return;
    const { limits } = this.options;
    const { times } = client;
    const now = performance.now();
    let until = Math.min(times.lastMovedAt + limits.idleTimeoutMs, times.openedAt + limits.maxLifetimeMs);
    if (times.requestStartedAt >= 0) until = Math.min(until, times.requestStartedAt + limits.headerTimeoutMs);
    if (times.closeBy >= 0) until = Math.min(until, times.closeBy);
    const wait = Math.min(LONGEST_WAIT_MS, Math.max(1, Math.ceil(until - now)));
    const armed = this.#armed[way];
    if (armed >= 0 && wait <= armed + REARM_SLACK_MS && wait >= armed - REARM_SLACK_MS) return;
    // Within the slack of the armed one either way: an early wake finds nothing and re-arms.
    this.#armed[way] = wait;
    this.#timeval[0] = BigInt(Math.floor(wait / 1000));
    this.#timeval[1] = BigInt((wait % 1000) * 1000);
    const libc = this.libc;
    libc.setsockopt(client.fd, libc.SOL_SOCKET, way === 'receive' ? libc.SO_RCVTIMEO : libc.SO_SNDTIMEO, this.#timeval, 16);
  }

  /**
   * Every reply is written: our FIN follows them (unless the connection failed). Out of the room
   * before the descriptor is closed: another member's thread may be writing to it until then.
   */
  #finish(client: HandConnection, slot: number): void {
    const libc = this.libc;
    if (!client.failed) libc.shutdown(client.fd, libc.SHUT_WR);
    client.conversation.release();
    client.sent += this.#table.writtenTo(slot).bytes;
    this.#table.close(slot, libc);
    this.forget(client);
  }

  /** The thread is done: the accept guard's spare descriptor goes. */
  end(): void {
    this.closeHouse();
  }

  protected stopListening(): void {}
  protected resumeAccepting(): void {}
}

// --- The thread's life ------------------------------------------------------------------------

const config = workerData as ThreadConfig;
const libc: Libc = await import('../../shared/libc.js');
const table = new ThreadTable(config.table);
const options = { ...config.options, log: createBlockingLogger(config.labId, config.quiet) };
// Named in the kernel, so `ps -L`, `top -H` and /proc/PID/task/TID/comm say which thread is which
// (the kernel keeps 15 bytes).
try {
  writeFileSync('/proc/thread-self/comm', config.role === 'pool' ? `lab08 pool ${config.index}` : config.role === 'connection' ? 'lab08 conn' : 'lab08 acceptor');
} catch {
  // /proc is not mounted: the thread works the same without a name.
}
// Only the acceptor keeps a spare descriptor, for turning clients away when the process is out of
// them. A pool's clients beyond its threads wait in the kernel's queue anyway: out of descriptors,
// a pool thread waits too (kit/accept.ts), and N spares would be N descriptors less for clients.
const ground: Ground<CopyOptions> = { libc, listenFd: config.listenFd, options, turnAway: config.role === 'acceptor', blocking: true };
const server = new BlockingServer(ground, table, new SharedRoom(libc, table));
try {
  // Its modules are loaded and its descriptors open: the main thread counts it as started.
  parentPort!.postMessage({ type: 'ready' } satisfies FromThread);
  if (config.role === 'connection') {
    server.serve(config.client!);
  } else {
    for (let client = server.accept(); client; client = server.accept()) {
      if (config.role === 'pool') server.serve(client);
      else parentPort!.postMessage({ type: 'accepted', client } satisfies FromThread);
    }
  }
} finally {
  server.end();
}
