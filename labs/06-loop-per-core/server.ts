/**
 * Lab 06: one event loop per core. N copies of lab 04, and the question of who gets each client.
 *
 * Model: what production Node runs (cluster, pm2) and what nginx runs (one worker per core):
 * `--workers N` event loops, each serving its own connections exactly as lab 04 serves all of
 * them. Here each loop is a worker thread (the README says why threads and not processes). What
 * differs is how a new connection reaches a loop, `--balance`:
 *
 *   handoff    One acceptor (this main thread) takes every connection and passes it to the next
 *              loop in turn. Node's cluster does this by default on Linux (round-robin in the
 *              primary); UNP vol. 1 ch. 30 calls it descriptor passing.
 *   shared     Every loop accepts from the same listening socket, and whoever's accept() runs
 *              first wins: cluster's SCHED_NONE, nginx without `reuseport`, UNP's preforked
 *              children that each call accept. The kernel decides by who is awake and waiting.
 *   reuseport  Every loop has its own listening socket, all bound to the same port with
 *              SO_REUSEPORT, each with its own accept queue. The kernel picks the socket for each
 *              new connection by a hash of its addresses and ports: even on average, blind to
 *              how busy each loop is.
 *
 * The main thread, step by step:
 *   1. Makes the listening socket(s) itself, with socket/setsockopt/bind/listen through koffi
 *      (Node 20's listen() has no reusePort option), and keeps them for the server's lifetime.
 *   2. Starts N worker threads, each with its own copy (dup) of the socket it accepts from;
 *      "listening" is printed once every loop is up.
 *   3. handoff only: accepts each connection (libuv, paused: not a byte read) and posts its
 *      descriptor to worker (next++ mod N), which wraps it in a socket of its own loop and says
 *      so; until then the descriptor is in transit, and this thread keeps its number.
 *   4. A worker that dies took only its own clients with it: a new one takes its place, on the
 *      same listening socket (its queue waited for it, held open by this thread's copy). The
 *      descriptors still in transit to it were never its clients: they go to a live loop.
 *   5. Shutdown: shuts the listening sockets down (every loop's accept stops at that moment), asks
 *      every loop to finish, and prints one line per worker: connections and round trips.
 *
 * Cost per connection: as lab 04 (a socket, an epoll registration, a few kilobytes). Per loop: a
 * thread with its own V8 isolate and libuv loop, about 9 MB resident, busy or not (README).
 *
 * How it fails: a loop is still one thread, so a slow request stalls that loop's clients, and
 * nothing moves them elsewhere. With reuseport, new connections keep landing on a stalled loop
 * (the hash does not know it is stalled) while the others idle. With shared, at light load one
 * loop takes most connections. With handoff, one thread accepts for everyone.
 *
 * What to watch: `ss -ltn 'sport = :8080'` (one LISTEN line, or one per loop with reuseport),
 * `ps -L -o tid,comm,pcpu -p PID` (the threads named "lab06 worker K"), the per-connection lines
 * (each names its worker) and the per-worker summary at shutdown.
 */

import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { UserError } from '../../shared/errors.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { openListener, resolveIPv4 } from '../../shared/listener.js';
import { plural } from '../../shared/log.js';
import { RoomHub } from '../../shared/room.js';
import { gracefulClose } from '../../shared/server-kit.js';
import { labInfo } from '../index.js';
import { CAP, COUNTERS_PER_WORKER, type FromWorker, type ToWorker, type WorkerConfig } from './messages.js';

type Libc = typeof import('../../shared/libc.js');

export const BALANCES = ['handoff', 'shared', 'reuseport'] as const;
export type Balance = (typeof BALANCES)[number];

export interface LoopOptions {
  /** Event loops, one worker thread each. */
  readonly workers: number;
  readonly balance: Balance;
}

/** Most loops a user may ask for: far past any core count this lab will meet, each ~10 MB. */
export const MAX_WORKERS = 256;

const WORKER_SCRIPT = new URL('./worker.js', import.meta.url);

export async function start(options: ServerOptions & LoopOptions): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError('lab 06 needs Linux: it makes its listening sockets with the Linux socket API');
  const { log, balance, workers: count } = options;
  const host = await resolveIPv4(options, 'lab 06');
  const libc: Libc = await import('../../shared/libc.js');

  // Step 1. handoff and shared: one socket. reuseport: one per loop, all on the same port.
  const opened = balance === 'reuseport' ? openReusePortGroup(libc, host, options, count) : [openListener(libc, { ...options, host })];
  const listeners = opened.map((listener) => listener.fd);
  const port = opened[0]!.port;

  // Step 2. The loops. Each accepts from its own descriptor, a dup: a loop closes its copy when it
  // stops or dies, and the socket must stay open for the others and for a replacement.
  const slots = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  slots[CAP] = options.maxConns;
  const counters = new BigInt64Array(new SharedArrayBuffer(COUNTERS_PER_WORKER * count * BigInt64Array.BYTES_PER_ELEMENT));
  const loops: Worker[] = [];
  let stopping = false;
  let onAllExited: (() => void) | undefined;
  let alive = 0;
  /**
   * handoff: per live worker, the descriptors posted to it that it has not yet said it adopted. A
   * message to a loop that is dying is dropped with it, and the client would hang, never closed.
   */
  const inTransit = new Map<Worker, Set<number>>();
  let next = 0;
  /** Posts a connection to the next live loop in turn; with none left, closes it (the client sees the close). */
  const handOn = (fd: number) => {
    for (let tries = 0; tries < count; tries++) {
      const target = loops[next]!;
      next = (next + 1) % count;
      const pending = inTransit.get(target);
      if (!pending) continue;
      pending.add(fd);
      target.postMessage({ type: 'connection', fd } satisfies ToWorker);
      return;
    }
    libc.close(fd);
  };

  // The one room, kept here because no loop sees another's members. Each loop sends what
  // its members do; each message comes back to every loop that has a member to hear it, as one
  // postMessage per loop, and that loop writes it to its own sockets.
  const hub = new RoomHub<number>((index, delivery) => loops[index]?.postMessage({ type: 'room', delivery } satisfies ToWorker));

  const listenFdFor = (index: number): number | undefined => {
    if (balance === 'handoff') return undefined;
    const fd = libc.dup(listeners[balance === 'reuseport' ? index : 0]!);
    if (fd < 0) throw libc.callError('dup', libc.errno());
    return fd;
  };

  const startLoop = async (index: number): Promise<void> => {
    const config: WorkerConfig = {
      index,
      listenFd: listenFdFor(index),
      backlog: options.backlog,
      protocol: options.protocol,
      limits: options.limits,
      noDelay: options.noDelay,
      work: options.work,
      quiet: log.quiet,
      slots,
      counters,
    };
    const worker = new Worker(WORKER_SCRIPT, { workerData: config });
    loops[index] = worker;
    inTransit.set(worker, new Set());
    alive++;
    let ready = false;
    let onReady: ((message: FromWorker) => void) | undefined;
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'adopted') inTransit.get(worker)?.delete(message.fd);
      else if (message.type === 'room') hub.handle(index, message.request);
      else onReady?.(message);
    });
    worker.on('error', (error) => log.warn(`worker ${index} failed: ${error.message}`));
    worker.on('exit', (code) => {
      alive--;
      // Its messages have all been delivered by now (Node drains the port before 'exit'), so
      // what is still in transit never reached its loop: no descriptor of it was closed there.
      const lost = inTransit.get(worker)!;
      inTransit.delete(worker);
      // A replacement first, so these clients may go to it as well as to the other loops.
      if (!stopping && ready) startLoop(index).catch((error: unknown) => log.warn(`could not start a new worker ${index}: ${String(error)}`));
      for (const fd of lost) {
        if (stopping) libc.close(fd);
        else handOn(fd);
      }
      // Its members are gone with its sockets: the room says so to everyone else.
      hub.detach(index, 'its loop ended');
      if (stopping) {
        if (alive === 0) onAllExited?.();
        return;
      }
      if (!ready) return; // a loop that never came up is start-up's failure, reported there
      // Step 4. Its connections closed with its loop (a thread's handles close when it ends);
      // every other loop's clients never noticed.
      log.warn(
        `worker ${index} ended with exit code ${code}; its clients are closed, the others are unaffected; starting a new worker ${index}` +
          (lost.size > 0 ? `; ${lost.size} connections handed to it and not yet taken go to the live loops` : ''),
      );
    });
    const message = await Promise.race([
      new Promise<FromWorker>((resolve) => {
        onReady = resolve;
      }),
      once(worker, 'exit').then(() => undefined),
    ]);
    if (!message || message.type !== 'ready') throw new Error(`worker ${index} exited before its loop was ready`);
    ready = true;
    log.info(`worker ${index} ready on thread ${message.tid ?? '?'}, ${balance === 'handoff' ? 'taking clients from the acceptor' : balance === 'shared' ? 'accepting from the shared socket' : 'accepting from its own socket'}`);
  };

  const closeListeners = () => {
    for (const fd of listeners.splice(0)) {
      libc.shutdown(fd, libc.SHUT_RD);
      libc.close(fd);
    }
  };

  try {
    // One at a time: a loop still starting needs descriptors of its own (its epoll, its wake-up
    // pipe), and under a tight descriptor limit N of them starting at once may not all fit.
    for (let index = 0; index < count; index++) await startLoop(index);
  } catch (error) {
    stopping = true;
    closeListeners();
    await Promise.all(loops.map((worker) => worker.terminate()));
    throw error;
  }

  // Step 3. handoff: this thread is the acceptor.
  let acceptor: net.Server | undefined;
  if (balance === 'handoff') {
    // pauseOnConnect: not a byte is read here, so the worker's socket sees the whole stream.
    acceptor = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
      const fd = descriptorOf(socket);
      // The worker gets its own descriptor for the connection; this thread's is closed at once.
      // (Closing it sends nothing: the connection lives while any descriptor for it is open.)
      const handed = fd === undefined ? -1 : libc.dup(fd);
      if (handed < 0) {
        const peer = `${socket.remoteAddress}:${socket.remotePort}`; // read before the socket is gone
        if (fd === undefined) log.warn(`client ${peer} refused: this Node does not expose a socket's descriptor`);
        else log.client(`client ${peer} refused: out of file descriptors to hand it on`);
      }
      socket.destroy();
      if (handed >= 0) handOn(handed);
    });
    acceptor.on('error', (error) => log.warn(`acceptor: ${error.message}`));
    // The acceptor adopts the socket made in step 1, as each worker does with its copy.
    await new Promise<void>((resolve) => acceptor!.listen({ fd: listeners[0]!, backlog: options.backlog }, resolve));
    // net.Server owns the descriptor now and closes it itself.
    listeners.splice(0);
  }

  // Every descriptor the server keeps is open now: what the open-file limit leaves is for clients.
  const room = descriptorRoom(count);
  if (room !== undefined && room < options.maxConns) {
    Atomics.store(slots, CAP, room);
    log.info(`serving at most ${plural(room, 'connection')} at once, not --max-conns ${options.maxConns}: the open-file limit leaves room for no more`);
  }
  log.info(`${plural(count, 'event loop')} on worker threads, connections spread by ${balance}`);

  const tell = (message: ToWorker) => {
    for (const worker of loops) worker.postMessage(message);
  };
  const close = gracefulClose(
    {
      stopAccepting: () => {
        stopping = true;
        // Synchronous, for every loop at once: after this no loop can accept, and a new client is
        // refused by the kernel. Asking each loop to close its copy would leave a moment in which
        // some still accept.
        acceptor?.close();
        closeListeners();
      },
      finish: () => tell({ type: 'stop' }),
      force: () => tell({ type: 'force' }),
      drained: () =>
        alive === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              onAllExited = resolve;
            }),
      release: async () => {
        for (let index = 0; index < count; index++) {
          const served = counters[COUNTERS_PER_WORKER * index]!;
          const trips = counters[COUNTERS_PER_WORKER * index + 1]!;
          log.info(`worker ${index}: ${plural(served, 'connection')}, ${plural(trips, 'round trip')}`);
        }
      },
    },
    options.shutdownTimeoutMs,
  );
  return { address: { host, port }, close };
}

export const lab: Lab<LoopOptions> = { info: labInfo('06-loop-per-core'), start };

/**
 * Descriptors kept free of clients: per loop, one for a connection being accepted and closed at
 * the cap and one for a handoff copy; a few more for libuv and V8 (a thread's or a timer's needs).
 */
const descriptorMargin = (loops: number) => 4 + 2 * loops;

/**
 * How many connections the open-file limit leaves room for, from /proc (Linux); undefined where
 * /proc is missing. Why this lab needs it: libuv keeps one spare descriptor per loop and, out of
 * descriptors, closes it to accept and shed the waiting connections, then opens it again. With
 * several loops in one process the descriptor table is shared, so another loop can take the
 * freed one in between and a loop loses its spare (robust suite, case 8, shared policy). A cap
 * under the limit keeps accept() from ever running out.
 */
function descriptorRoom(loops: number): number | undefined {
  try {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    if (limit === undefined) return undefined;
    return Math.max(1, Number(limit) - readdirSync('/proc/self/fd').length - descriptorMargin(loops));
  } catch {
    return undefined;
  }
}

/**
 * The descriptor under a net.Socket. Node has no public way to take a socket's descriptor, and a
 * worker thread cannot be sent a net.Socket; `_handle.fd` is where Node exposes libuv's descriptor
 * on Unix. It is internal, so a Node without it makes every handoff a refusal (logged), not a crash.
 */
function descriptorOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

// --- Binding ----------------------------------------------------------------------------------

/**
 * N listening sockets on one port, SO_REUSEPORT on each. First the port is claimed by a socket
 * WITHOUT the option: SO_REUSEPORT would let this lab join another program's group on a port in
 * use (any program of the same user that set it), where the right answer is "port in use". That
 * socket also learns the port when --port is 0; it is closed once the group holds the port.
 * (Between its close and the group's first bind another program could take the port: the group's
 * bind then fails as "in use", which is what happened.)
 */
function openReusePortGroup(libc: Libc, host: string, options: ServerOptions, count: number): { fd: number; port: number }[] {
  const claim = openListener(libc, { ...options, host, listen: false });
  libc.close(claim.fd);
  const group: { fd: number; port: number }[] = [];
  try {
    for (let i = 0; i < count; i++) group.push(openListener(libc, { ...options, host, port: claim.port, reusePort: true }));
  } catch (error) {
    for (const listener of group) libc.close(listener.fd);
    throw error;
  }
  return group;
}
