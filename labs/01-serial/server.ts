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
 *   2. Serve that client alone: poll() it until readable (this stands in for a C server's
 *      blocking read()), then read() up to 64 KiB.
 *   3. Hand the bytes to the connection's conversation (shared/conversation.ts): its replies are
 *      worked out here, inline, and all of them are written before the next read (when the send
 *      buffer is full, poll() for room; a file range goes by sendfile(), or pread() and write()).
 *      Backpressure comes free with this model: a client that sends faster than it reads is
 *      slowed to its own reading speed.
 *   4. At the client's FIN every reply is already written: shutdown(SHUT_WR) sends our FIN,
 *      close() frees the socket, and the loop goes back to 1.
 *
 * Waiting without blocking Node: every wait is a poll() of at most 50 ms, after which Node's
 * event loop gets a turn (shared/turn.ts), so a Ctrl-C is handled within about 50 ms whether the
 * server waits in accept or in read. A C server would simply block. The time limits are checked
 * each time a wait ends, so each may fire up to POLL_MS late (a timer per limit would need the
 * event loop, which we visit only between waits anyway).
 *
 * The house around the loop (the connection record, the accept guard, the limits, the start-up
 * and the shutdown) is the by-hand kit's, shared/kit/, as labs 05 and 07's is.
 */

import type { CopyOptions } from '../../shared/file-send.js';
import { ACCEPT_RETRY_MS } from '../../shared/kit/accept.js';
import { HandConnection, READ_BYTES } from '../../shared/kit/connection.js';
import { type Ground, HandServer } from '../../shared/kit/server.js';
import { startByHand } from '../../shared/kit/start.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { labInfo } from '../index.js';

export function start(options: ServerOptions & CopyOptions): Promise<RunningServer> {
  // The kernel's accept queue is the only queue: nobody is turned away, however long the wait.
  return startByHand({ name: 'lab 01', calls: 'the Linux socket API', turnAway: false, build: (ground) => new SerialServer(ground) }, options);
}

export const lab: Lab<CopyOptions> = { info: labInfo('01-serial'), start };

// --- The server -------------------------------------------------------------------------------

class SerialServer extends HandServer<HandConnection, CopyOptions> {
  /**
   * Lent to each client in turn: the one client served at a time uses it alone (what waits in
   * the outbox is copied out of it). 64 KiB, so a 1 MiB stream takes 16 reads.
   */
  readonly #readBuffer = Buffer.allocUnsafe(READ_BYTES);

  constructor(ground: Ground<CopyOptions>) {
    super(ground);
  }

  /**
   * Step 1 of the loop: accept the next client and serve it, until stopAccepting(). Resolves when
   * the last client is closed; rejects only on a bug (an errno no server should see).
   */
  async run(): Promise<void> {
    const libc = this.libc;
    // Let start() return first, so "listening on" is printed before the first poll() blocks.
    await this.turns.take();
    try {
      while (this.accepting) {
        const accepted = this.guard.accept(this.listenFd, performance.now());
        if (accepted === 'empty') {
          // Nobody is waiting. Every await may have run close(), so the loop re-checks accepting.
          const ready = this.turns.poll(this.listenFd, libc.POLLIN);
          if (!ready || this.turns.due()) await this.turns.take();
        } else if (accepted === 'paused') {
          await new Promise((resolve) => setTimeout(resolve, ACCEPT_RETRY_MS));
        } else {
          // Steps 2 to 4: this client alone, until it or a limit closes the connection.
          const client = this.admit(accepted.fd, accepted.peer, performance.now(), (admission) => new HandConnection(admission));
          if (client) await this.#serve(client);
        }
      }
    } finally {
      this.closeHouse();
    }
  }

  /** Steps 2 to 4 for one client: read, answer, write everything, read again. */
  async #serve(client: HandConnection): Promise<void> {
    const { libc, turns } = this;
    client.conversation.start();
    while (!client.failed && !(client.closing && client.outbox.empty)) {
      // Stands in for a C server's blocking read(), or write() while replies wait: poll() until ready.
      const writing = !client.outbox.empty;
      const ready = turns.poll(client.fd, writing ? libc.POLLOUT : libc.POLLIN);
      const now = performance.now();
      if (!ready || turns.due(now)) await turns.take();
      // The limits, each time a wait ends; a turn may have run close(), which can end this client.
      if (this.overLimit(client, now) || !ready) continue;
      if (writing) client.flush();
      else if (!client.closing) client.readSome(this.#readBuffer, now);
    }
    // Step 4. Every reply is written by now: our FIN follows them. If the server chose to close
    // (an error, or the client's request to), we do not wait for the client's FIN either, just
    // as the other labs (and Node's own HTTP server) do: close() right after the FIN.
    if (!client.failed) libc.shutdown(client.fd, libc.SHUT_WR);
    libc.close(client.fd);
    this.forget(client);
  }

  /**
   * Shutdown, step 1: close the listening socket at once. The kernel resets the clients still in
   * its accept queue: they were never accepted, so nobody else could ever serve them.
   */
  protected stopListening(): void {
    // Safe although run() may be using this fd: close() runs only while run() awaits, and run()
    // checks accepting after every await before touching the fd again.
    this.libc.close(this.listenFd);
    this.listenFd = -1;
  }

  protected resumeAccepting(): void {}

  /** A reply is written at once into an empty outbox; behind waiting bytes, #serve polls for room first. */
  transmit(client: HandConnection): void {
    if (client.outbox.items.length === 1) client.flush();
  }

  /** #serve sees it closing and ends once the outbox is empty. */
  closeWhenSent(): void {}

  /** #serve sees it failed when its wait ends, and closes it. */
  abandon(): void {}
}
