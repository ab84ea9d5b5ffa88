/**
 * Lab 01: serial. One client at a time; the others wait in the kernel's listen backlog.
 *
 * Model: the first server in every C textbook. accept() one connection, serve it until it closes,
 * accept() the next. While a client is being served nobody calls accept(), so the kernel finishes
 * the TCP handshakes of the clients that arrive meanwhile and queues them on the listening socket
 * (the accept queue, sized by listen(2)'s backlog). They are connected as far as their own kernel
 * can tell, and what they send is buffered, but no byte comes back until their turn.
 *
 * The loop:
 *   1. accept4() the next connection. If none is queued, poll() the listening socket and retry.
 *   2. poll() the client until it is readable (this stands in for a C server's blocking read()),
 *      then read() up to 64 KiB.
 *   3. Frame the bytes into jobs and answer each inline: `respond` runs here, and its reply is
 *      written completely before the next read. When the kernel's send buffer is full, write()
 *      says EAGAIN and we poll() for POLLOUT until it has room. A client that sends faster than it
 *      reads is thereby slowed to its own reading speed: backpressure comes free with this model.
 *   4. At the client's FIN (read() returns 0) every reply is already written: shutdown(SHUT_WR)
 *      sends our FIN, close() frees the socket, and the loop goes back to 1.
 *
 * Concurrency: none. One client is served; the rest wait in the kernel. There is no queue in this
 * process, so `--max-conns` does not apply: the backlog is the queue (set it with `--backlog`).
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
 * Waiting without blocking Node: JavaScript has one thread, and while it sits in a system call
 * no signal handler or timer runs. So the sockets are non-blocking and every wait is a poll() of
 * at most POLL_MS, after which the event loop gets a turn: a Ctrl-C is handled within about
 * POLL_MS whether the server waits in accept or in read. A C server would simply block; the
 * price here is one poll() per wait on top of its read() and write().
 */

import dns from 'node:dns/promises';
import net from 'node:net';
import { UserError } from '../../shared/errors.js';
import type { ConnectionLimits, Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { formatBytes } from '../../shared/log.js';
import { createSession, respond, type Session, type Step } from '../../shared/protocol.js';
import { bindError, gracefulClose } from '../../shared/server-kit.js';
import { labInfo } from '../index.js';

type Libc = typeof import('../../shared/libc.js');

/**
 * The most one read() takes: the size Node's own sockets read with, so every lab hands the
 * protocol chunks of the same size, and large enough that a 1 MiB stream takes 16 reads.
 * One buffer serves every read: the echo reply is written before the next read overwrites it,
 * and the http session copies what it keeps.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Longest one poll() blocks the thread. It bounds how late a signal, the shutdown deadline or a
 * connection limit is noticed, and costs an idle server 20 wake-ups a second.
 */
const POLL_MS = 50;

/**
 * While bytes keep flowing, the event loop gets a turn only once this much time has passed since
 * the last one. A turn costs one to two microseconds of CPU (an epoll_wait and Node's bookkeeping,
 * measured here); taken on every round trip, it would be a cost of this workaround billed to the
 * model. Every 10 ms it is noise, and a signal still waits no longer than a poll() timeout does.
 */
const TURN_EVERY_MS = 10;

/**
 * After accept4() fails for want of file descriptors or memory (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM), wait this long before trying again. The connection stays in the queue, so poll()
 * would report the listening socket readable at once and a retry loop would spin a core doing
 * nothing; a descriptor only frees up when something else closes one.
 */
const ACCEPT_RETRY_MS = 100;

/** The int 1 that setsockopt() reads to switch an option on. */
const ON = new Int32Array([1]);

export async function start(options: ServerOptions): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError('lab 01 needs Linux: it calls the Linux socket API directly');
  const host = await resolveIPv4(options);
  const libc: Libc = await import('../../shared/libc.js');
  const { fd: listenFd, port } = openListener(libc, host, options);
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

export const lab: Lab = { info: labInfo('01-serial'), start };

// --- Binding ----------------------------------------------------------------------------------

/**
 * The IPv4 address to bind: the literal itself, or what a name like "localhost" resolves to.
 * Simplification: IPv4 only, to keep the system calls to struct sockaddr_in.
 */
async function resolveIPv4(options: ServerOptions): Promise<string> {
  if (net.isIPv4(options.host)) return options.host;
  if (net.isIPv6(options.host)) {
    throw new UserError(`cannot listen on ${options.host}: lab 01 speaks IPv4 only (try --host 127.0.0.1)`);
  }
  try {
    return (await dns.lookup(options.host, { family: 4 })).address;
  } catch (error) {
    throw bindError(error as NodeJS.ErrnoException, options);
  }
}

/** socket, setsockopt, bind, listen: a non-blocking listening socket. Returns it and its port. */
function openListener(libc: Libc, host: string, options: ServerOptions): { fd: number; port: number } {
  const fd = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.callError('socket', libc.errno());
  const fail = (syscall: string): never => {
    const error = libc.callError(syscall, libc.errno());
    libc.close(fd);
    throw bindError(error, options);
  };
  // As Node does for every TCP server: a restarted lab may bind its port again at once, even
  // while connections of its previous run linger in TIME_WAIT.
  if (libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, ON, 4) < 0) fail('setsockopt');
  if (libc.bind(fd, libc.sockaddrIn(host, options.port), 16) < 0) fail('bind');
  if (libc.listen(fd, options.backlog) < 0) fail('listen');
  // With --port 0 the kernel picked the port; ask it which.
  const bound = new Uint8Array(16);
  if (libc.getsockname(fd, bound, new Uint32Array([16])) < 0) fail('getsockname');
  return { fd, port: (bound[2]! << 8) | bound[3]! };
}

// --- The server -------------------------------------------------------------------------------

/** The client being served, and what its disconnect line will report. */
interface Client {
  readonly fd: number;
  readonly peer: string;
  readonly session: Session;
  readonly openedAt: number;
  /** When a byte last moved either way (for the idle timeout). */
  lastMovedAt: number;
  /** When the current http request head began arriving, or -1 (for the header timeout). */
  headStartedAt: number;
  received: number;
  sent: number;
  reason: string;
  /** Read no more: after the client's FIN, or when the protocol or a shutdown ends the connection. */
  closing: boolean;
  peerEnded: boolean;
  /** Ended early by a limit, an error or the shutdown deadline: no shutdown(), just close(). */
  failed: boolean;
}

class SerialServer {
  readonly #libc: Libc;
  readonly #options: ServerOptions;
  readonly #limits: ConnectionLimits;
  #listenFd: number;
  #accepting = true;
  /** The shutdown deadline passed (or a second Ctrl-C): close the client now. */
  #forced = false;
  #client: Client | undefined;
  #lastTurnAt = 0;
  // Reused by every call, so the hot loop allocates only what the protocol core does.
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly #pollFd: InstanceType<Libc['PollFd']>;
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);

  constructor(libc: Libc, listenFd: number, options: ServerOptions) {
    this.#libc = libc;
    this.#listenFd = listenFd;
    this.#options = options;
    this.#limits = options.limits;
    this.#pollFd = new libc.PollFd();
  }

  /**
   * Step 1 of the loop: accept the next client and serve it, until stopAccepting(). Resolves when
   * the last client is closed; rejects only on a bug (an errno no server should see).
   */
  async run(): Promise<void> {
    const libc = this.#libc;
    // Let start() return first, so "listening on" is printed before the first poll() blocks.
    await this.#turn();
    let starved = false;
    while (this.#accepting) {
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = libc.accept4(this.#listenFd, this.#peerAddress, this.#peerAddressLength, libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC);
      if (fd >= 0) {
        starved = false;
        await this.#serve(fd, libc.formatSockaddrIn(this.#peerAddress));
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) {
        // Nobody is waiting. Every await may have run close(), so the loop re-checks #accepting.
        const ready = this.#wait(this.#listenFd, libc.POLLIN);
        if (!ready || this.#turnDue()) await this.#turn();
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
    const client = this.#client;
    if (client?.session.stopAfterCurrent()) this.#closeAfterReplies(client);
  }

  /** Shutdown, step 3, at the deadline: the loop closes the current client when it next wakes. */
  force(): void {
    this.#forced = true;
  }

  // --- Serving one client ---------------------------------------------------------------------

  /** Steps 2 to 4: serve one client until it or a limit closes the connection. */
  async #serve(fd: number, peer: string): Promise<void> {
    const libc = this.#libc;
    const now = performance.now();
    const client: Client = {
      fd,
      peer,
      session: createSession(this.#options.protocol),
      openedAt: now,
      lastMovedAt: now,
      headStartedAt: -1,
      received: 0,
      sent: 0,
      reason: 'closed by client',
      closing: false,
      peerEnded: false,
      failed: false,
    };
    this.#client = client;
    this.#options.log.client(`client ${peer} connected`);
    // Echo round trips are small writes answered by small writes: without TCP_NODELAY, Nagle's
    // algorithm could hold a reply back until the client's delayed ACK (as every lab sets it).
    libc.setsockopt(fd, libc.IPPROTO_TCP, libc.TCP_NODELAY, ON, 4);

    while (!client.failed && !client.closing) {
      const ready = this.#wait(fd, libc.POLLIN);
      const now = performance.now();
      if (!ready || now - this.#lastTurnAt >= TURN_EVERY_MS) await this.#turn();
      // A turn may have run close(), which can end this client (a limit, or http between requests).
      if (this.#overLimit(client, now) || client.closing || !ready) continue;

      const n = libc.read(fd, this.#readBuffer, READ_BUFFER_BYTES);
      if (n > 0) {
        client.received += n;
        client.lastMovedAt = now;
        const answering = this.#answer(client, client.session.receive(this.#readBuffer.subarray(0, n)), now);
        if (answering) await answering;
      } else if (n === 0) {
        client.peerEnded = true;
        await this.#answer(client, client.session.end(), now);
        this.#closeAfterReplies(client);
      } else {
        const error = libc.errno();
        // EAGAIN: poll() said readable but the bytes were gone (rare, harmless): wait again.
        if (error !== libc.EAGAIN && error !== libc.EINTR) this.#fail(client, libc.errnoName(error));
      }
    }

    // Step 4. Every reply is written by now: our FIN follows them. If the server chose to close
    // (http: an error or `Connection: close`), we do not wait for the client's FIN either, just
    // as the other labs (and Node's http server) do: close() right after the FIN.
    if (!client.failed) libc.shutdown(fd, libc.SHUT_WR);
    libc.close(fd);
    client.session.close();
    this.#client = undefined;
    const seconds = ((performance.now() - client.openedAt) / 1000).toFixed(1);
    this.#options.log.client(
      `client ${peer} disconnected (${client.reason}; received ${formatBytes(client.received)}, ` +
        `sent ${formatBytes(client.sent)}, ${seconds} s)`,
    );
  }

  /**
   * Step 3: answer each job inline and write its reply completely, in order. Returns undefined
   * when every reply went out at once (the usual case, kept free of promises), or a promise when
   * the send buffer filled up and the rest has to wait for room.
   */
  #answer(client: Client, step: Step, now: number): Promise<void> | undefined {
    const jobs = step.jobs;
    for (let i = 0; i < jobs.length; i++) {
      const reply = respond(jobs[i]!, this.#options.work);
      // In this model the unsent bytes are never more than the reply in hand, because nothing is
      // read while a reply is unsent; the cap matters only if set below one reply's size.
      if (reply.length > this.#limits.maxPendingBytes) {
        this.#fail(client, `over ${formatBytes(this.#limits.maxPendingBytes)} of unsent replies`);
        return undefined;
      }
      const written = this.#writeSome(client, reply, 0, now);
      if (written < 0) return undefined;
      if (written < reply.length) return this.#answerLater(client, step, i, reply, written);
    }
    if (step.close) this.#closeAfterReplies(client);
    this.#watchHeader(client, now);
    return undefined;
  }

  /** The slow path of #answer: reply `index` is written up to `offset`, then come the rest. */
  async #answerLater(client: Client, step: Step, index: number, reply: Uint8Array, offset: number): Promise<void> {
    if (!(await this.#writeRest(client, reply, offset))) return;
    await this.#answer(client, { jobs: step.jobs.slice(index + 1), close: step.close }, performance.now());
  }

  /** write() until done or the send buffer is full; returns the new offset (failed: -1). */
  #writeSome(client: Client, reply: Uint8Array, offset: number, now: number): number {
    const libc = this.#libc;
    while (offset < reply.length) {
      const chunk = offset === 0 ? reply : reply.subarray(offset);
      const n = libc.write(client.fd, chunk, chunk.length);
      if (n >= 0) {
        offset += n;
        client.sent += n;
        client.lastMovedAt = now;
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) return offset;
      if (error === libc.EINTR) continue;
      // EPIPE or ECONNRESET: the client is gone. Node ignores SIGPIPE, so this is an errno, not death.
      this.#fail(client, libc.errnoName(error));
      return -1;
    }
    return offset;
  }

  /** The send buffer is full: poll for room until the reply is out. False if the client failed. */
  async #writeRest(client: Client, reply: Uint8Array, offset: number): Promise<boolean> {
    for (;;) {
      const ready = this.#wait(client.fd, this.#libc.POLLOUT);
      const now = performance.now();
      if (!ready || now - this.#lastTurnAt >= TURN_EVERY_MS) await this.#turn();
      // The idle timeout covers this wait too: a client that stops reading stops bytes moving.
      if (this.#overLimit(client, now)) return false;
      if (!ready) continue;
      offset = this.#writeSome(client, reply, offset, now);
      if (offset < 0) return false;
      if (offset === reply.length) return true;
    }
  }

  #closeAfterReplies(client: Client): void {
    if (client.closing) return;
    client.closing = true;
    if (client.reason === 'closed by client' && !client.peerEnded) client.reason = 'closed by server';
  }

  /** http: time the request head from its first byte; an echo session never has one pending. */
  #watchHeader(client: Client, now: number): void {
    if (!client.session.headPending) client.headStartedAt = -1;
    else if (client.headStartedAt < 0) client.headStartedAt = now;
  }

  /**
   * The connection limits, checked each time a wait ends, so each may fire up to POLL_MS late
   * (a simplification: a timer per limit would need the event loop, which we visit only between
   * waits anyway). True if the client has just been failed.
   */
  #overLimit(client: Client, now: number): boolean {
    const limits = this.#limits;
    if (client.failed) return true;
    if (this.#forced) return this.#fail(client, 'shutdown deadline');
    if (now - client.lastMovedAt >= limits.idleTimeoutMs) return this.#fail(client, 'idle timeout');
    if (now - client.openedAt >= limits.maxLifetimeMs) return this.#fail(client, 'lifetime limit');
    if (client.headStartedAt >= 0 && now - client.headStartedAt >= limits.headerTimeoutMs) {
      return this.#fail(client, 'header timeout');
    }
    return false;
  }

  #fail(client: Client, reason: string): true {
    if (!client.failed) client.reason = reason;
    client.failed = true;
    return true;
  }

  // --- Waiting ----------------------------------------------------------------------------------

  /**
   * Blocks in poll() for at most POLL_MS until `fd` is ready for `events`. True when it is ready
   * (or in error, which the following read or write reports); false when the time ran out or a
   * signal interrupted the wait, and the caller should give the event loop its turn.
   */
  #wait(fd: number, events: number): boolean {
    const libc = this.#libc;
    this.#pollFd.set(fd, events);
    const n = libc.poll(this.#pollFd.words, 1, POLL_MS);
    if (n > 0) return true;
    if (n === 0) return false;
    const error = libc.errno();
    if (error === libc.EINTR) return false; // most likely our Ctrl-C: take the turn now
    throw libc.callError('poll', error);
  }

  #turnDue(): boolean {
    return performance.now() - this.#lastTurnAt >= TURN_EVERY_MS;
  }

  /**
   * Gives the event loop one turn (setImmediate runs after its I/O phase): signal handlers,
   * timers such as the shutdown deadline, and close() itself run here and nowhere else.
   */
  #turn(): Promise<void> {
    return new Promise((resolve) =>
      setImmediate(() => {
        this.#lastTurnAt = performance.now();
        resolve();
      }),
    );
  }
}
