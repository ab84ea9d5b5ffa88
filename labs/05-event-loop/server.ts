/**
 * Lab 05: the event loop by hand. One thread, one loop, epoll (or poll) called directly.
 *
 * Model: what libuv does for lab 04, written out. Every socket is non-blocking; the thread asks
 * the kernel which of them are ready, does what each ready one allows (accept, read, write) and
 * asks again. Nothing ever waits on one client. The readiness mechanism is a flag: `--mux epoll`
 * (the kernel keeps the interest list and returns only the ready descriptors) or `--mux poll`
 * (we hand the kernel every descriptor on every call), or `--mux select` (the same with fd_set
 * bitmaps, which have no bit for a descriptor at or over FD_SETSIZE, 1024: such a client is
 * refused with a line naming the limit). With epoll, `--trigger level` reports a
 * socket as long as it is readable; `--trigger edge` reports it once per arrival of new bytes,
 * so the reader must read until EAGAIN or it stalls (`--no-drain` shows the stall on purpose);
 * `--trigger oneshot` (EPOLLONESHOT) reports it once and then not until EPOLL_CTL_MOD re-arms it,
 * after every event (`--no-rearm` forgets the re-arm on purpose: the second message never comes).
 *
 * The loop:
 *   1. A non-blocking listening socket; epoll_create1(EPOLL_CLOEXEC) (or an array of pollfd);
 *      the listening socket is registered for EPOLLIN.
 *   2. epoll_wait() (or poll()) for at most POLL_MS (50 ms). Then Node's own event loop gets a
 *      turn, so Ctrl-C, SIGTERM, the shutdown deadline and close() run: after every wait that
 *      found nothing, and every TURN_EVERY_MS (10 ms) while busy (shared/turn.ts, as lab 01).
 *   3. The listening socket is ready: accept4() until EAGAIN. Each client is registered for
 *      EPOLLIN | EPOLLRDHUP (plus EPOLLET in edge mode) with a connection id in the event's
 *      `data` field; the id finds the connection's state in a map, and leaves the map on close.
 *      Past --max-conns, out of descriptors (a spare one is kept for this), or refused by the
 *      backend (select: FD_SETSIZE), a client is accepted and closed at once, so it is told
 *      instead of left waiting in the queue.
 *   4. A client is readable: read() (edge: until EAGAIN; level: once per wake-up) and hand the
 *      bytes to its conversation (shared/conversation.ts), whose replies are worked out inline
 *      and written at once. What the kernel does not take waits in the connection's outbox; while
 *      it waits, EPOLL_CTL_MOD adds EPOLLOUT, and over PAUSE_READING_BYTES of it the client is not
 *      read at all (backpressure; past --max-pending it is closed). EPOLLOUT: write the outbox;
 *      once it is empty, drop EPOLLOUT. A file range in the outbox is opened when its turn comes
 *      and sent by sendfile() (or pread() and write(), `--copy read-write`) until EAGAIN, then on
 *      at each EPOLLOUT. A room's lines for a member join its outbox as replies do.
 *   5. The peer's FIN (EPOLLRDHUP, then read() returning 0): everything it sent is still answered,
 *      then shutdown(SHUT_WR) and close(), as in every lab. EPOLLERR or EPOLLHUP: close. Every
 *      close removes the descriptor from the poller and the connection from the map.
 *
 * Concurrency: interleaving on one thread, as lab 04. Every open client is served; a ready one
 * waits only for the others ready in the same wake-up.
 *
 * Cost per connection: a socket, one registration (epoll: in the kernel's interest list; poll:
 * a pollfd entry that every call copies in and scans), and a small state object; no thread.
 * With epoll an idle client costs nothing per wake-up; with poll it costs a look on every one.
 *
 * How it fails: as lab 04, the work runs on the one thread (`--work-us` stalls everyone).
 * Edge-triggered without draining (`--trigger edge --no-drain`) loses wake-ups: a client whose
 * bytes outlast one read gets no more echo until it sends again. With poll, thousands of idle
 * connections make every wake-up slow, however few of them are ready.
 *
 * What to watch: `strace -f -e trace=epoll_wait,epoll_ctl,accept4,read,write -p PID`. In level
 * mode one read() follows each epoll_wait(); in edge mode reads repeat until one says EAGAIN.
 * With `--mux poll`, `strace -e trace=poll` shows the whole array passed on every call.
 *
 * Waiting without blocking Node: as in lab 01, JavaScript has one thread, and while it sits in
 * epoll_wait() no signal handler or timer runs; so each wait is bounded and Node's event loop
 * (which has its own epoll instance, for the signals and timers) gets a turn between waits.
 *
 * The house around the loop (the connection record and table, the accept guard, the sweep of the
 * time limits every SWEEP_MS, the start-up and the shutdown) is the by-hand kit's, shared/kit/,
 * as lab 07's is; the backends are in poller.ts. What is left here is the readiness loop.
 */

import { HandConnection, READ_BYTES } from '../../shared/kit/connection.js';
import { type Ground, HandServer, LISTENER_ID } from '../../shared/kit/server.js';
import { startByHand } from '../../shared/kit/start.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { POLL_MS } from '../../shared/turn.js';
import { labInfo } from '../index.js';
import { type LoopOptions, openPoller, type Poller, pollerUnavailable, Registration } from './poller.js';

/**
 * Edge mode: reads one client gets in one wake-up (1 MiB) before the others' turn. A client that
 * is cut off here has not seen EAGAIN, and the kernel will not report it again, so it goes on
 * our own list of clients still readable and is read again after this wake-up's other events.
 * Draining to EAGAIN without a bound would let one fast sender starve everyone.
 */
const MAX_READS_PER_WAKE = 16;

export function start(options: ServerOptions & LoopOptions): Promise<RunningServer> {
  return startByHand(
    {
      name: 'lab 05',
      calls: 'epoll and the socket API',
      turnAway: true,
      unmet: (libc) => pollerUnavailable(libc, options.mux),
      build: (ground) => new EventLoopServer(ground),
    },
    options,
  );
}

export const lab: Lab<LoopOptions> = { info: labInfo('05-event-loop'), start };

// --- The server -------------------------------------------------------------------------------

/** One client: the kit's record, and its registration in the poller. */
class Client extends HandConnection {
  registration!: Registration;
}

class EventLoopServer extends HandServer<Client, LoopOptions> {
  readonly #poller: Poller;
  /** Read until EAGAIN: edge mode, unless --no-drain. Level mode reads once and is woken again. */
  readonly #drains: boolean;
  /** Edge mode: clients cut off by MAX_READS_PER_WAKE before EAGAIN, to read again this round. */
  readonly #stillReadable = new Set<Client>();
  readonly #readBuffer = Buffer.allocUnsafe(READ_BYTES);

  constructor(ground: Ground<LoopOptions>) {
    super(ground);
    const { libc, options } = ground;
    this.#poller = openPoller(libc, options.mux);
    this.#drains = options.trigger === 'edge' && options.drain;
    // Step 1. The listening socket is level-triggered in both modes: it is read until EAGAIN
    // anyway, and level lets a paused accept (EMFILE) simply resume.
    this.#poller.add(this.listenFd, LISTENER_ID, libc.EPOLLIN);
  }

  /** Steps 2 to 5, until the listening socket is closed and the last client has gone. */
  async run(): Promise<void> {
    // Let start() return first, so "listening on" is printed before the first wait blocks.
    await this.turns.take();
    try {
      while (this.accepting || this.connections.size > 0) {
        // Step 2. Clients still readable from the last round must not wait POLL_MS for nothing.
        const backlogged = this.#stillReadable.size > 0;
        const ready = this.#poller.wait(backlogged ? 0 : POLL_MS);
        const now = performance.now();
        for (let i = 0; i < ready; i++) this.#dispatch(this.#poller.readyId(i), this.#poller.readyEvents(i), now);
        // A copy: a client cut off again goes back on the list for the next round, not this one.
        const stillReadable = [...this.#stillReadable];
        this.#stillReadable.clear();
        for (const client of stillReadable) if (!client.gone && client.reading) this.#readFrom(client, now);
        const turn = this.afterWake(now, ready === 0 && !backlogged);
        if (turn) await turn;
      }
    } finally {
      this.#poller.close();
      this.closeHouse();
    }
  }

  /** Shutdown, step 1: the kernel resets whoever waits in the listening socket's queue. */
  protected stopListening(): void {
    // Safe: this runs during a turn, between two waits, never while the loop uses the fd.
    this.#poller.remove(this.listenFd, LISTENER_ID);
    this.closeListener();
  }

  protected resumeAccepting(): void {
    this.#poller.modify(this.listenFd, LISTENER_ID, this.libc.EPOLLIN);
  }

  /** One ready registration: the listening socket, or a client (step 3, 4 or 5). */
  #dispatch(id: number, events: number, now: number): void {
    const libc = this.libc;
    if (id === LISTENER_ID) {
      if (this.accepting) this.#acceptAll(now);
      return;
    }
    // An id closed earlier in this same batch is gone from the map: its events are stale. (With
    // the fd as the key they could land on a new client that has just been given the same fd.)
    const client = this.connections.get(id);
    if (!client) return;
    if (events & (libc.EPOLLERR | libc.EPOLLHUP)) {
      // The socket's pending error (SO_ERROR) names what happened.
      const error = libc.socketError(client.fd);
      client.fail(error ? libc.errnoName(error) : events & libc.EPOLLERR ? 'EPOLLERR' : 'EPOLLHUP');
      return;
    }
    // Oneshot: this event disabled the registration; the handlers below re-arm it (#watch).
    client.registration.fired();
    if (events & libc.EPOLLOUT) this.#flush(client);
    if (events & (libc.EPOLLIN | libc.EPOLLRDHUP) && !client.gone && client.reading) this.#readFrom(client, now);
    if (!client.gone) this.#watch(client);
  }

  // --- Step 3: accepting --------------------------------------------------------------------

  #acceptAll(now: number): void {
    for (;;) {
      const accepted = this.guard.accept(this.listenFd, now);
      if (accepted === 'empty') return;
      if (accepted === 'paused') {
        // Out of the interest set until the guard's pause is over (see shared/kit/accept.ts).
        this.#poller.modify(this.listenFd, LISTENER_ID, 0);
        return;
      }
      this.#open(accepted.fd, accepted.peer, now);
    }
  }

  #open(fd: number, peer: string, now: number): void {
    const client = this.admit(fd, peer, now, (admission) => new Client(admission), this.#poller.refusal(fd));
    if (!client) return;
    client.registration = new Registration(this.#poller, this.libc, fd, client.id, this.options);
    this.#watch(client);
    client.conversation.start();
  }

  // --- Step 4: reading and writing ----------------------------------------------------------

  /** Edge mode drains to EAGAIN (within MAX_READS_PER_WAKE); level mode and --no-drain read once. */
  #readFrom(client: Client, now: number): void {
    for (let reads = 1; client.readSome(this.#readBuffer, now); reads++) {
      if (client.gone || !client.reading || !this.#drains) break;
      if (reads === MAX_READS_PER_WAKE) {
        this.#stillReadable.add(client);
        break;
      }
    }
    if (!client.gone) this.#watch(client);
  }

  /**
   * Something joined the client's outbox: written at once if nothing waits before it (behind
   * waiting bytes the kernel is full, and EPOLLOUT will say when it is not).
   */
  transmit(client: Client): void {
    if (client.outbox.items.length === 1) client.flush();
    if (!client.gone) this.#watch(client);
  }

  /** EPOLLOUT: write the outbox until it is empty or the kernel is full again. */
  #flush(client: Client): void {
    client.flush();
    if (client.closing) this.closeWhenSent(client);
    else if (!client.gone) this.#watch(client);
  }

  /**
   * What the poller watches for this client now: readable while it is read, writable only while
   * replies wait (a socket with room is writable almost always: asking for EPOLLOUT with nothing
   * to write would wake the loop for nothing, every time in level mode).
   */
  #watch(client: Client): void {
    client.registration.update(client.reading, !client.outbox.empty);
  }

  // --- Step 5: closing ------------------------------------------------------------------------

  closeWhenSent(client: Client): void {
    if (client.outbox.empty) this.#finish(client);
    else this.#watch(client);
  }

  abandon(client: Client): void {
    this.#finish(client);
  }

  /** Every reply is written: our FIN follows them (unless the connection failed), then close. */
  #finish(client: Client): void {
    if (client.gone) return;
    if (!client.failed) this.libc.shutdown(client.fd, this.libc.SHUT_WR);
    client.registration.remove();
    this.libc.close(client.fd);
    this.#stillReadable.delete(client);
    this.forget(client);
  }

}
