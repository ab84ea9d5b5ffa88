/**
 * Lab 01: serial. One client at a time; the others wait in the kernel's listen backlog.
 *
 * Model: the first server in every C textbook. accept() one connection, serve it until it closes,
 * accept() the next. While a client is being served nobody calls accept(), so the kernel finishes
 * the TCP handshakes of the clients that arrive meanwhile and queues them on the listening socket
 * (the accept queue, sized by listen(2)'s backlog). They are connected as far as their own kernel
 * can tell, and what they send is buffered, but no byte comes back until their turn. The socket
 * calls are made directly (through koffi, `shared/libc.ts`), so nothing in Node queues for us.
 *
 * Concurrency: none. One client is served; the rest wait in the kernel. There is no queue in this
 * process, so `--max-conns` does not apply (the lab does not take it): the backlog is the queue
 * (set it with `--backlog`).
 *
 * Cost per connection: one file descriptor and a socket's kernel buffers, one client at a time.
 * A waiting client costs this process nothing; it costs the kernel a socket in the accept queue.
 *
 * How it fails: one slow client stops everyone. An `nc` left open holds the line until it closes
 * or `--idle-timeout` ends it (300 s by default), and `--work-us` adds to everybody's wait. When
 * the accept queue is full the kernel drops further SYNs; those clients sit in SYN-SENT and their
 * kernel sends the SYN again only after 1 s, and a second or more after that (the README has the
 * details), so a full queue shows up as whole seconds of latency.
 *
 * What to watch: `ss -ltn 'sport = :8080'`. Recv-Q of the listening socket is the number of
 * clients waiting to be accepted; Send-Q is the backlog. `ss -tn 'dport = :8080'` shows the
 * waiting clients ESTABLISHED (or SYN-SENT, beyond the backlog).
 *
 * The loop:
 *   1. accept4() the next connection. If none is queued, poll() the listening socket and retry.
 *   2. Serve that client alone (connection.ts): poll() it until readable (this stands in for a C
 *      server's blocking read()), then read() up to 64 KiB.
 *   3. Frame the bytes into jobs and answer each inline: `respond` runs here, and its reply is
 *      written completely before the next read (when the send buffer is full, poll() for room).
 *   4. At the client's FIN every reply is already written: shutdown(SHUT_WR) sends our FIN,
 *      close() frees the socket, and the loop goes back to 1.
 *
 * Waiting without blocking Node: every wait is a poll() of at most 50 ms, after which Node's
 * event loop gets a turn (shared/turn.ts), so a Ctrl-C is handled within about 50 ms whether the
 * server waits in accept or in read. A C server would simply block.
 */

import { UserError } from '../../shared/errors.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import type { CopyOptions } from '../../shared/file-send.js';
import { openListener, resolveIPv4 } from '../../shared/listener.js';
import { gracefulClose } from '../../shared/server-kit.js';
import { LocalRoom } from '../../shared/room.js';
import type { Connection } from '../../shared/socket-connection.js';
import { EventLoopTurns } from '../../shared/turn.js';
import { labInfo } from '../index.js';
import { serveDescriptor, type DescriptorServing } from './connection.js';

type Libc = typeof import('../../shared/libc.js');

/**
 * The most one read() takes: the size Node's own sockets read with, so every lab hands the
 * protocol chunks of the same size, and large enough that a 1 MiB stream takes 16 reads.
 * One buffer serves every read: the echo reply is written before the next read overwrites it,
 * and the http session copies what it keeps.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * After accept4() fails for want of file descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM), wait this long before trying again. The connection stays in the queue, so poll()
 * would report the listening socket readable at once and a retry loop would spin a core doing
 * nothing; a descriptor only frees up when something else closes one.
 */
const ACCEPT_RETRY_MS = 100;

export async function start(options: ServerOptions & CopyOptions): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError('lab 01 needs Linux: it calls the Linux socket API directly');
  const host = await resolveIPv4(options, 'lab 01');
  const libc: Libc = await import('../../shared/libc.js');
  const { fd: listenFd, port } = openListener(libc, { ...options, host });
  const server = new SerialServer(libc, listenFd, options);
  const served = server.run();
  const close = gracefulClose(
    {
      stopAccepting: () => server.stopAccepting(),
      finish: () => server.finishCurrent(),
      force: () => server.force(),
      drained: () => served,
    },
    options.shutdownTimeoutMs,
  );
  return { address: { host, port }, close };
}

export const lab: Lab<CopyOptions> = { info: labInfo('01-serial'), start };

// --- The server -------------------------------------------------------------------------------

class SerialServer {
  readonly #libc: Libc;
  readonly #options: ServerOptions & CopyOptions;
  readonly #turns: EventLoopTurns;
  /** Lent to each client in turn: the one client served at a time uses them all. */
  readonly #serving: DescriptorServing;
  #listenFd: number;
  #accepting = true;
  /** The one client being served, if any. */
  #current: Connection | undefined;
  // Reused by every accept4(), so the loop allocates nothing per connection for the address.
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);

  constructor(libc: Libc, listenFd: number, options: ServerOptions & CopyOptions) {
    this.#libc = libc;
    this.#listenFd = listenFd;
    this.#options = options;
    this.#turns = new EventLoopTurns(libc);
    this.#serving = {
      libc,
      turns: this.#turns,
      readBuffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      protocol: options.protocol,
      limits: options.limits,
      noDelay: options.noDelay,
      work: options.work,
      log: options.log,
      // chat: one room for the server's lifetime, with one member at most: the one being served.
      // Whoever connects meanwhile is not in it yet; they wait in the kernel's accept queue.
      room: new LocalRoom(),
      copy: options.copy,
    };
  }

  /**
   * Step 1 of the loop: accept the next client and serve it, until stopAccepting(). Resolves when
   * the last client is closed; rejects only on a bug (an errno no server should see).
   */
  async run(): Promise<void> {
    const libc = this.#libc;
    // Let start() return first, so "listening on" is printed before the first poll() blocks.
    await this.#turns.take();
    let starved = false;
    while (this.#accepting) {
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = libc.accept4(this.#listenFd, this.#peerAddress, this.#peerAddressLength, libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC);
      if (fd >= 0) {
        starved = false;
        // Steps 2 to 4: this client alone, until it or a limit closes the connection.
        this.#current = serveDescriptor(fd, libc.formatSockaddrIn(this.#peerAddress), this.#serving);
        await this.#current.closed;
        this.#current = undefined;
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) {
        // Nobody is waiting. Every await may have run close(), so the loop re-checks #accepting.
        const ready = this.#turns.poll(this.#listenFd, libc.POLLIN);
        if (!ready || this.#turns.due()) await this.#turns.take();
      } else if (error === libc.EINTR || libc.ACCEPT_RETRY_ERRORS.has(error)) {
        continue; // that one connection is gone; the next may be fine
      } else if (error === libc.EMFILE || error === libc.ENFILE || error === libc.ENOBUFS || error === libc.ENOMEM) {
        if (!starved) this.#options.log.warn(`accept: ${libc.errnoName(error)}; retrying every ${ACCEPT_RETRY_MS} ms`);
        starved = true;
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
      } else {
        throw libc.callError('accept4', error);
      }
    }
  }

  /**
   * Shutdown, step 1: close the listening socket at once. The kernel resets the clients still in
   * its accept queue: they were never accepted, so nobody else could ever serve them.
   */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    // Safe although run() may be using this fd: close() runs only while run() awaits, and run()
    // checks #accepting after every await before touching the fd again.
    this.#libc.close(this.#listenFd);
    this.#listenFd = -1;
  }

  /** Shutdown, step 2: the current client finishes what it is doing (http: its current request). */
  finishCurrent(): void {
    this.#current?.stop();
  }

  /** Shutdown, step 3, at the deadline: the current client is closed when its loop next wakes. */
  force(): void {
    this.#current?.destroy();
  }
}
