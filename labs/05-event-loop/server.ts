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
 *      Past --max-conns, or out of descriptors (a spare one is kept for this), a client is
 *      accepted and closed at once, so it is told instead of left waiting in the queue.
 *   4. A client is readable: read() (edge: until EAGAIN; level: once per wake-up), frame the
 *      bytes into jobs with the protocol core, answer each inline and write the reply. What the
 *      kernel does not take waits in the connection's queue; while it waits, EPOLL_CTL_MOD adds
 *      EPOLLOUT, and over PAUSE_READING_BYTES of them the client is not read at all (backpressure; past
 *      --max-pending it is closed). EPOLLOUT: write the queue; once it is empty, drop EPOLLOUT.
 *      files: a reply that is a file range joins the queue as a FileTransfer, sent by sendfile()
 *      (or pread() and write(), `--copy read-write`) until EAGAIN, then on at each EPOLLOUT. A
 *      request pipelined behind it waits in the queue as its FileJob, and its file is opened only
 *      when its turn comes: one descriptor per client at a time, however many requests it sends.
 *   5. The peer's FIN (EPOLLRDHUP, then read() returning 0): everything it sent is still echoed,
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
 * The per-connection rules (limits, close reasons, the connect and disconnect lines) are every
 * lab's, from shared/rules.ts; the limits are checked by a sweep every SWEEP_MS.
 */

import { closeSync, openSync } from 'node:fs';
import { labInfo } from '../index.js';
import { UserError } from '../../shared/errors.js';
import type { ConnectionLimits, Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { createSession, respond, type Session, type Step } from '../../shared/protocol.js';
import { NO_SESSION, queueLimits, type QueueLimits } from '../../shared/chat.js';
import { ChatMember } from '../../shared/chat-member.js';
import { LocalRoom } from '../../shared/room.js';
import { CLOSED, ConnectionRecord, limitReached, overPending, type ConnectionTimes } from '../../shared/rules.js';
import { gracefulClose } from '../../shared/server-kit.js';
import { EventLoopTurns, POLL_MS } from '../../shared/turn.js';
import { type Libc, ON, openListener, resolveIPv4 } from '../../shared/listener.js';
import { EpollPoller, type Mux, type Poller, PollPoller, SelectPoller } from './poller.js';
import { answerFile, closeBody } from '../../shared/file-open.js';
import { type CopyMode, FileTransfer } from '../../shared/file-send.js';
import type { FileJob } from '../../shared/files.js';

export type Trigger = 'level' | 'edge' | 'oneshot';
export const TRIGGERS: readonly Trigger[] = ['level', 'edge', 'oneshot'];

export interface LoopOptions {
  readonly mux: Mux;
  readonly trigger: Trigger;
  /** False only with `--no-drain`: read once per wake-up even in edge mode (the bug, on purpose). */
  readonly drain: boolean;
  /** files: sendfile(2), or pread(2) and write(2) (`--copy`, shared/file-send.ts). */
  readonly copy: CopyMode;
  /**
   * False only with `--no-rearm`: in oneshot mode, a client is not re-armed (EPOLL_CTL_MOD) after
   * its event, so epoll never reports it again (the bug, on purpose).
   */
  readonly rearm?: boolean;
}

const LAB_ID = '05-event-loop';

/**
 * The most one read() takes, as in lab 01: the size Node's own sockets read with, so every lab
 * hands the protocol chunks of the same size. One buffer serves every read; a reply that points
 * into it is copied before it waits in a queue.
 */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * After accept4() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) and
 * no client could be turned away with the spare descriptor (see #turnAway), the listening socket
 * leaves the interest set for this long. The connection stays queued, so the socket stays
 * readable, and a level-triggered wait would report it again at once: the loop would spin a core
 * until something else closes a descriptor.
 */
const ACCEPT_RETRY_MS = 100;

/**
 * Queued reply bytes over which a client is no longer read (its EPOLLIN is dropped) until they
 * drain: one read's worth. Its bytes then wait in the kernel, whose receive window slows the
 * sender down. Node's sockets pause from 16 KiB; one read's worth keeps the echo of one full read
 * that the kernel did not take at once from pausing the client.
 */
const PAUSE_READING_BYTES = READ_BUFFER_BYTES;

/**
 * Edge mode: reads one client gets in one wake-up (1 MiB) before the others' turn. A client that
 * is cut off here has not seen EAGAIN, and the kernel will not report it again, so it goes on
 * our own list of clients still readable and is read again after this wake-up's other events.
 * Draining to EAGAIN without a bound would let one fast sender starve everyone.
 */
const MAX_READS_PER_WAKE = 16;

/**
 * How often every connection's time limits are checked. Idle, lifetime and header limits are
 * whole seconds, so 100 ms late is fine; checking on every wake-up would make each one O(open
 * connections), the very cost epoll saves. (A timer wheel would make it O(expiring).)
 */
const SWEEP_MS = 100;

/** The listening socket's id in the poller; connections count from 1. */
const LISTENER_ID = 0;

export async function start(options: ServerOptions & LoopOptions): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError(`lab ${LAB_ID} needs Linux: it calls epoll and the socket API directly`);
  const libc: Libc = await import('../../shared/libc.js');
  const layout = libc.epollEventLayout();
  if (options.mux === 'epoll' && !layout) {
    throw new UserError(`lab ${LAB_ID} knows struct epoll_event only on x64 and arm64, not ${process.arch} (try --mux poll)`);
  }
  const host = await resolveIPv4(options, 'lab 05');
  const { fd: listenFd, port } = openListener(libc, { ...options, host });
  const poller: Poller = options.mux === 'epoll' ? new EpollPoller(libc, layout!) : options.mux === 'select' ? new SelectPoller(libc) : new PollPoller(libc);
  if (!options.drain) {
    options.log.info(
      `--no-drain: a demonstration of a bug: each client is read once per wake-up${
        options.trigger === 'edge'
          ? '; in edge mode bytes left behind one read wait until the client sends again, or for good once they fill the receive window'
          : ' (harmless in level mode: the socket is reported again while bytes remain)'
      }`,
    );
  }
  if (options.trigger === 'oneshot' && options.rearm === false) {
    options.log.info(
      '--no-rearm: a demonstration of a bug: a client is not re-armed with EPOLL_CTL_MOD after its event, so EPOLLONESHOT ' +
        'has disabled it for good: its first message is echoed, the next ones never are',
    );
  }
  const server = new EventLoopServer(libc, poller, listenFd, options);
  const served = server.run();
  const close = gracefulClose(
    {
      stopAccepting: () => server.stopAccepting(),
      finish: () => server.finishAll(),
      force: () => server.force(),
      drained: () => served,
    },
    options.shutdownTimeoutMs,
  );
  return { address: { host, port }, close };
}

export const lab: Lab<LoopOptions> = { info: labInfo(LAB_ID), start };

// --- The server -------------------------------------------------------------------------------

/** One client: its descriptor, its place in the poller, its queue of unsent replies. */
interface Connection {
  readonly id: number;
  readonly fd: number;
  readonly session: Session;
  /** chat: the member (its line framer, its place in the room) in place of `session`. */
  chat?: ChatMember;
  /** Its connect and disconnect lines and the reason it closed (shared/rules.ts). */
  readonly record: ConnectionRecord;
  /** Opened, last byte moved, http head begun: what the time limits are measured from. */
  readonly times: ConnectionTimes;
  received: number;
  sent: number;
  /**
   * Replies not yet wholly taken by the kernel, oldest first; the first is written from `offset`.
   * files: a file range is a FileTransfer, which keeps its own place in the file; a request
   * behind it is its FileJob, not opened yet.
   */
  readonly queue: (Uint8Array | FileTransfer | FileJob)[];
  /** FileTransfers and FileJobs in `queue`: while there is one, the client is not read (it has a file to take first). */
  files: number;
  offset: number;
  /**
   * Bytes of the replies in `queue`, each counted whole until its last byte is written: how Node
   * counts a socket's writableLength, so --max-pending means here what it means in labs 02-04.
   */
  pending: number;
  /** What the poller watches for this client now (so an unchanged mask costs no epoll_ctl). */
  interest: number;
  /** Oneshot: false once an event was reported (epoll disabled the registration) until the next MOD. */
  armed: boolean;
  /** Read no more: after the peer's FIN, or when the protocol or a shutdown ends the connection. */
  closing: boolean;
  peerEnded: boolean;
  /** Ended early by a limit, an error or the shutdown deadline: no shutdown(), just close(). */
  failed: boolean;
}

class EventLoopServer {
  readonly #libc: Libc;
  readonly #poller: Poller;
  readonly #options: ServerOptions & LoopOptions;
  readonly #limits: ConnectionLimits;
  readonly #edge: boolean;
  /** EPOLLONESHOT: each registration reports one event, then waits for EPOLL_CTL_MOD to re-arm it. */
  readonly #oneshot: boolean;
  /** Oneshot: re-arm after each event (false only with --no-rearm). */
  readonly #rearms: boolean;
  /** Read until EAGAIN: edge mode, unless --no-drain. Level mode reads once and is woken again. */
  readonly #drains: boolean;
  #listenFd: number;
  #accepting = true;
  /** The listening socket is out of the interest set until then (see ACCEPT_RETRY_MS); 0: it is in. */
  #acceptPausedUntil = 0;
  /** accept4() last failed for want of descriptors (warn once per spell, not every retry). */
  #starved = false;
  /** A descriptor held in reserve for turning clients away when the process runs out (-1: none). */
  #spareFd = openSpare();
  #nextId = LISTENER_ID + 1;
  /** The connection state behind each id that the poller reports. */
  readonly #connections = new Map<number, Connection>();
  /** Edge mode: clients cut off by MAX_READS_PER_WAKE before EAGAIN, to read again this round. */
  readonly #stillReadable = new Set<Connection>();
  readonly #turns: EventLoopTurns;
  #lastSweepAt = 0;
  #forced = false;
  readonly #readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);
  readonly #socketError = new Int32Array(1);
  readonly #socketErrorLength = new Uint32Array(1);
  /** chat: the room is a set of connections in this one thread, as in lab 04. */
  readonly #chatting: boolean;
  readonly #room = new LocalRoom();
  /** chat: how much may wait for one member, and for how long, before it is cut off (shared/chat.ts). */
  readonly #queueLimits: QueueLimits;

  constructor(libc: Libc, poller: Poller, listenFd: number, options: ServerOptions & LoopOptions) {
    this.#libc = libc;
    this.#turns = new EventLoopTurns(libc);
    this.#poller = poller;
    this.#listenFd = listenFd;
    this.#options = options;
    this.#limits = options.limits;
    this.#edge = options.trigger === 'edge';
    this.#oneshot = options.trigger === 'oneshot';
    this.#rearms = options.rearm !== false;
    this.#drains = this.#edge && options.drain;
    this.#chatting = options.protocol.protocol === 'chat';
    this.#queueLimits = queueLimits(options.limits.maxPendingBytes);
    // Step 1. The listening socket is level-triggered in both modes: it is read until EAGAIN
    // anyway, and level lets a paused accept (EMFILE) simply resume.
    poller.add(listenFd, LISTENER_ID, libc.EPOLLIN);
  }

  /** Steps 2 to 5, until the listening socket is closed and the last client has gone. */
  async run(): Promise<void> {
    // Let start() return first, so "listening on" is printed before the first wait blocks.
    await this.#turns.take();
    try {
      while (this.#accepting || this.#connections.size > 0) {
        // Step 2. Clients still readable from the last round must not wait POLL_MS for nothing.
        const backlogged = this.#stillReadable.size > 0;
        const ready = this.#poller.wait(backlogged ? 0 : POLL_MS);
        const now = performance.now();
        for (let i = 0; i < ready; i++) this.#dispatch(this.#poller.readyId(i), this.#poller.readyEvents(i), now);
        // A copy: a client cut off again goes back on the list for the next round, not this one.
        const stillReadable = [...this.#stillReadable];
        this.#stillReadable.clear();
        for (const connection of stillReadable) {
          if (this.#connections.has(connection.id) && this.#reading(connection)) this.#readFrom(connection, now);
        }
        if (this.#acceptPausedUntil > 0 && now >= this.#acceptPausedUntil) this.#resumeAccepting();
        if (now - this.#lastSweepAt >= SWEEP_MS) this.#sweep(now);
        const idle = ready === 0 && !backlogged;
        if (idle || this.#turns.due(now)) await this.#turns.take();
      }
    } finally {
      this.#poller.close();
      if (this.#spareFd >= 0) closeSync(this.#spareFd);
    }
  }

  /** Shutdown, step 1: close the listening socket; the kernel resets whoever waits in its queue. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    // Safe: this runs during a turn, between two waits, never while the loop uses the fd.
    this.#poller.remove(this.#listenFd, LISTENER_ID);
    this.#libc.close(this.#listenFd);
    this.#listenFd = -1;
  }

  /** Shutdown, step 2: each client finishes what it is doing (http: its current request). */
  finishAll(): void {
    for (const connection of this.#connections.values()) {
      if (connection.chat) connection.chat.stop();
      else if (connection.session.stopAfterCurrent()) this.#closeAfterReplies(connection);
    }
  }

  /** Shutdown, step 3, at the deadline: close every client now. */
  force(): void {
    this.#forced = true;
    for (const connection of [...this.#connections.values()]) this.#fail(connection, CLOSED.shutdown);
  }

  /** One ready registration: the listening socket, or a client (step 3, 4 or 5). */
  #dispatch(id: number, events: number, now: number): void {
    const libc = this.#libc;
    if (id === LISTENER_ID) {
      if (this.#accepting) this.#acceptAll(now);
      return;
    }
    // An id closed earlier in this same batch is gone from the map: its events are stale. (With
    // the fd as the key they could land on a new client that has just been given the same fd.)
    const connection = this.#connections.get(id);
    if (!connection) return;
    if (events & (libc.EPOLLERR | libc.EPOLLHUP)) {
      this.#fail(connection, this.#pendingError(connection, events));
      return;
    }
    // Oneshot: this event disabled the registration; the handlers below re-arm it (#updateInterest).
    if (this.#oneshot) connection.armed = false;
    if (events & libc.EPOLLOUT) this.#flush(connection, now);
    if (events & (libc.EPOLLIN | libc.EPOLLRDHUP) && this.#connections.has(id) && this.#reading(connection)) {
      this.#readFrom(connection, now);
    }
    if (this.#oneshot && this.#connections.has(id)) this.#updateInterest(connection);
  }

  // --- Step 3: accepting --------------------------------------------------------------------

  #acceptAll(now: number): void {
    const libc = this.#libc;
    for (;;) {
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = libc.accept4(this.#listenFd, this.#peerAddress, this.#peerAddressLength, libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC);
      if (fd >= 0) {
        this.#starved = false;
        this.#open(fd, libc.formatSockaddrIn(this.#peerAddress), now);
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) return; // the queue is empty
      if (error === libc.EINTR || libc.ACCEPT_RETRY_ERRORS.has(error)) continue; // that one connection is gone
      if (error === libc.EMFILE || error === libc.ENFILE || error === libc.ENOBUFS || error === libc.ENOMEM) {
        if (!this.#starved) this.#options.log.warn(`accept: ${libc.errnoName(error)}; turning clients away until descriptors free up`);
        this.#starved = true;
        if ((error === libc.EMFILE || error === libc.ENFILE) && this.#turnAway()) continue;
        this.#poller.modify(this.#listenFd, LISTENER_ID, 0);
        this.#acceptPausedUntil = now + ACCEPT_RETRY_MS;
        return;
      }
      throw libc.callError('accept4', error);
    }
  }

  /**
   * Out of descriptors: give the spare one back, accept one client with it and close it at once,
   * then take the spare again (libuv does the same for lab 04). The client learns at once that it
   * will not be served instead of waiting in the queue for nothing, and the listening socket stops
   * being readable. False when no client was turned away (no spare, or the queue is empty).
   */
  #turnAway(): boolean {
    if (this.#spareFd < 0) return false;
    closeSync(this.#spareFd);
    this.#peerAddressLength[0] = this.#peerAddress.length;
    const fd = this.#libc.accept4(this.#listenFd, this.#peerAddress, this.#peerAddressLength, this.#libc.SOCK_CLOEXEC);
    if (fd >= 0) this.#libc.close(fd);
    this.#spareFd = openSpare();
    return fd >= 0;
  }

  #resumeAccepting(): void {
    this.#acceptPausedUntil = 0;
    if (this.#accepting) this.#poller.modify(this.#listenFd, LISTENER_ID, this.#libc.EPOLLIN);
  }

  #open(fd: number, peer: string, now: number): void {
    const libc = this.#libc;
    if (this.#connections.size >= this.#options.maxConns) {
      // Over --max-conns: closed as soon as accepted, as libuv does for lab 04.
      libc.close(fd);
      return;
    }
    if (this.#poller.name === 'select' && fd >= libc.FD_SETSIZE) {
      // select(2) has no bit for this descriptor: refused, never written past the end of an fd_set.
      this.#options.log.warn(`client ${peer} refused: its descriptor ${fd} is at or over select()'s FD_SETSIZE (${libc.FD_SETSIZE}: descriptors 0-${libc.FD_SETSIZE - 1} only)`);
      libc.close(fd);
      return;
    }
    // Echo round trips are small writes answered by small writes: without TCP_NODELAY, Nagle's
    // algorithm could hold a reply back until the client's delayed ACK (every lab sets it, unless
    // --no-nodelay asks for Nagle, for the Nagle experiment).
    if (this.#options.noDelay) libc.setsockopt(fd, libc.IPPROTO_TCP, libc.TCP_NODELAY, ON, 4);
    const record = new ConnectionRecord(this.#options.log, peer);
    const connection: Connection = {
      id: this.#nextId++,
      fd,
      session: this.#chatting ? NO_SESSION : createSession(this.#options.protocol),
      record,
      times: { openedAt: record.openedAt, lastMovedAt: now, headStartedAt: -1 },
      received: 0,
      sent: 0,
      queue: [],
      files: 0,
      offset: 0,
      pending: 0,
      interest: 0,
      armed: true,
      closing: false,
      peerEnded: false,
      failed: false,
    };
    this.#connections.set(connection.id, connection);
    connection.interest = this.#wanted(connection);
    this.#poller.add(fd, connection.id, connection.interest);
    if (this.#chatting) {
      // The room's bytes go through this client's own queue; EPOLLOUT is asked for while any wait,
      // which is all "waiting for writability by hand" is.
      connection.chat = new ChatMember(
        this.#room,
        {
          record,
          pending: () => connection.pending,
          open: () => !connection.closing && this.#connections.has(connection.id),
          send: (bytes) => {
            this.#send(connection, bytes, performance.now());
            if (this.#connections.has(connection.id)) this.#updateInterest(connection);
          },
          closeAfterReplies: () => this.#closeAfterReplies(connection),
        },
        this.#queueLimits,
        this.#options.log,
      );
      connection.chat.join();
    }
  }

  // --- Step 4: reading, answering, writing ----------------------------------------------------

  /** Edge mode drains to EAGAIN (within MAX_READS_PER_WAKE); level mode and --no-drain read once. */
  #readFrom(connection: Connection, now: number): void {
    const libc = this.#libc;
    for (let reads = 1; ; reads++) {
      const n = libc.read(connection.fd, this.#readBuffer, READ_BUFFER_BYTES);
      if (n > 0) {
        connection.received += n;
        connection.times.lastMovedAt = now;
        const bytes = this.#readBuffer.subarray(0, n);
        if (connection.chat) connection.chat.receive(bytes);
        else this.#answer(connection, connection.session.receive(bytes), now);
        if (!this.#connections.has(connection.id) || !this.#reading(connection) || !this.#drains) break;
        if (reads === MAX_READS_PER_WAKE) {
          this.#stillReadable.add(connection);
          break;
        }
      } else if (n === 0) {
        // Step 5: the peer's FIN. Everything it sent is read; the replies still go out.
        connection.peerEnded = true;
        if (connection.chat) connection.chat.leave();
        else this.#answer(connection, connection.session.end(), now);
        this.#closeAfterReplies(connection);
        return;
      } else {
        const error = libc.errno();
        if (error === libc.EAGAIN) break; // drained: the kernel will report new bytes
        if (error === libc.EINTR) continue;
        this.#fail(connection, libc.errnoName(error));
        return;
      }
    }
    if (this.#connections.has(connection.id)) this.#updateInterest(connection);
  }

  /** Answers each job inline and sends its reply; a close the protocol asks for follows them. */
  #answer(connection: Connection, step: Step, now: number): void {
    for (const job of step.jobs) {
      if (job.kind === 'file') this.#sendFile(connection, job, now);
      else this.#send(connection, respond(job, this.#options.work), now);
      if (connection.failed) return;
    }
    if (step.close) this.#closeAfterReplies(connection);
    // http: the header timeout runs from a request head's first byte until its end.
    const times = connection.times;
    if (!connection.session.headPending) times.headStartedAt = -1;
    else if (times.headStartedAt < 0) times.headStartedAt = now;
  }

  /**
   * Writes at once what the kernel takes, if nothing is queued before it; otherwise the reply
   * joins the queue, copied (an echo reply is a view of the read buffer, which the next read
   * overwrites).
   */
  #send(connection: Connection, reply: Uint8Array, now: number): void {
    let written = 0;
    if (connection.queue.length === 0) {
      written = this.#write(connection, reply, now);
      if (written < 0 || written === reply.length) return;
      connection.offset = written;
    }
    connection.queue.push(Buffer.from(reply));
    connection.pending += reply.length;
    const over = overPending(this.#limits, connection.pending);
    if (over) this.#fail(connection, over);
  }

  /**
   * files: the head as any reply, then the file range by `--copy` (sendfile, or pread and write)
   * as far as the kernel takes it now; the rest waits in the queue for EPOLLOUT.
   */
  #sendFile(connection: Connection, job: FileJob, now: number): void {
    // Behind other replies: its file is opened when its turn comes (#flush), not now.
    if (connection.queue.length > 0) {
      connection.queue.push(job);
      connection.files++;
      return;
    }
    const { head, body } = answerFile(job, this.#options.protocol.root!, connection.record.peer, this.#options.log);
    this.#send(connection, head, now);
    if (!body) return;
    if (connection.failed) return closeBody(body);
    const transfer = new FileTransfer(this.#libc, this.#options.copy, body);
    if (connection.queue.length === 0 && this.#sendSome(connection, transfer, now)) return;
    connection.queue.push(transfer);
    connection.files++;
  }

  /** Sends what the kernel takes of a file range; true when it is all sent or the connection failed. */
  #sendSome(connection: Connection, transfer: FileTransfer, now: number): boolean {
    const state = transfer.send(connection.fd, (bytes) => {
      connection.sent += bytes;
      connection.times.lastMovedAt = now;
    });
    if (!state.done && state.failure === undefined) return false;
    closeBody(transfer.body);
    if (!state.done) this.#fail(connection, state.failure!);
    return true;
  }

  /** EPOLLOUT: write the queue until it is empty or the kernel is full again. */
  #flush(connection: Connection, now: number): void {
    const queue = connection.queue;
    while (queue.length > 0) {
      const head = queue[0]!;
      if (head instanceof FileTransfer) {
        if (!this.#sendSome(connection, head, now)) break;
        if (connection.failed) return;
        queue.shift();
        connection.files--;
        continue;
      }
      if (!(head instanceof Uint8Array)) {
        // A file's turn: open it and start it with the queue empty before it, then put back the rest.
        queue.shift();
        connection.files--;
        const rest = queue.splice(0);
        this.#sendFile(connection, head, now);
        if (connection.failed) return;
        queue.push(...rest);
        if (queue.length > rest.length) break;
        continue;
      }
      const chunk = connection.offset === 0 ? head : head.subarray(connection.offset);
      const written = this.#write(connection, chunk, now);
      if (written < 0) return;
      if (written < chunk.length) {
        connection.offset += written;
        break;
      }
      queue.shift();
      connection.pending -= head.length;
      connection.offset = 0;
    }
    if (connection.closing && connection.pending === 0 && connection.files === 0) this.#finish(connection);
    else this.#updateInterest(connection);
  }

  /** write() until `bytes` are taken or the kernel says EAGAIN; returns how many it took (failed: -1). */
  #write(connection: Connection, bytes: Uint8Array, now: number): number {
    const libc = this.#libc;
    let offset = 0;
    while (offset < bytes.length) {
      const n = libc.write(connection.fd, offset === 0 ? bytes : bytes.subarray(offset), bytes.length - offset);
      if (n >= 0) {
        offset += n;
        connection.sent += n;
        connection.times.lastMovedAt = now;
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) break;
      if (error === libc.EINTR) continue;
      // EPIPE or ECONNRESET: the client is gone. Node ignores SIGPIPE, so this is an errno, not death.
      this.#fail(connection, libc.errnoName(error));
      return -1;
    }
    return offset;
  }

  /** Read while not closing and not over PAUSE_READING_BYTES of queued replies (backpressure). */
  #reading(connection: Connection): boolean {
    return !connection.closing && connection.pending <= PAUSE_READING_BYTES && connection.files === 0;
  }

  /**
   * The registration this client needs now: EPOLLIN and EPOLLRDHUP while it is read, EPOLLOUT
   * only while replies wait (a socket with room is writable almost always: asking for EPOLLOUT
   * with nothing to write would wake the loop for nothing, every time in level mode).
   */
  #wanted(connection: Connection): number {
    const libc = this.#libc;
    let interest = this.#reading(connection) ? libc.EPOLLIN | libc.EPOLLRDHUP : 0;
    if (connection.pending > 0 || connection.files > 0) interest |= libc.EPOLLOUT;
    if (this.#oneshot) return (interest | libc.EPOLLONESHOT) >>> 0;
    return this.#edge ? (interest | libc.EPOLLET) >>> 0 : interest;
  }

  /**
   * EPOLL_CTL_MOD when the mask changes. The kernel re-checks readiness on MOD, so a client paused
   * with bytes waiting is reported again once EPOLLIN is back, in edge mode too.
   */
  #updateInterest(connection: Connection): void {
    const wanted = this.#wanted(connection);
    // Oneshot: after an event the registration is disabled whatever its mask; only MOD re-arms it.
    if (wanted === connection.interest && connection.armed) return;
    if (!connection.armed && !this.#rearms) return; // --no-rearm: THE BUG, on purpose
    connection.interest = wanted;
    connection.armed = true;
    this.#poller.modify(connection.fd, connection.id, wanted);
  }

  // --- Step 5: closing ------------------------------------------------------------------------

  #closeAfterReplies(connection: Connection): void {
    if (!this.#connections.has(connection.id)) return;
    if (!connection.closing) {
      connection.closing = true;
      connection.record.closeAfterReplies(connection.peerEnded);
    }
    if (connection.pending === 0 && connection.files === 0) this.#finish(connection);
    else this.#updateInterest(connection);
  }

  /** Every reply is written: our FIN follows them (unless the connection failed), then close. */
  #finish(connection: Connection): void {
    if (!this.#connections.has(connection.id)) return;
    if (!connection.failed) this.#libc.shutdown(connection.fd, this.#libc.SHUT_WR);
    this.#poller.remove(connection.fd, connection.id);
    this.#libc.close(connection.fd);
    for (const reply of connection.queue) if (reply instanceof FileTransfer) closeBody(reply.body);
    connection.session.close();
    connection.chat?.leave();
    this.#connections.delete(connection.id);
    this.#stillReadable.delete(connection);
    connection.record.disconnected(connection.received, connection.sent);
  }

  /** Ends a connection now, with `reason` in its disconnect line. */
  #fail(connection: Connection, reason: string): void {
    if (connection.failed || !this.#connections.has(connection.id)) return;
    connection.failed = true;
    connection.record.fail(reason);
    this.#finish(connection);
  }

  /** EPOLLERR or EPOLLHUP: the socket's pending error (SO_ERROR) names what happened. */
  #pendingError(connection: Connection, events: number): string {
    const libc = this.#libc;
    this.#socketErrorLength[0] = 4;
    this.#socketError[0] = 0;
    libc.getsockopt(connection.fd, libc.SOL_SOCKET, libc.SO_ERROR, this.#socketError, this.#socketErrorLength);
    if (this.#socketError[0]) return libc.errnoName(this.#socketError[0]);
    return events & libc.EPOLLERR ? 'EPOLLERR' : 'EPOLLHUP';
  }

  /** Every SWEEP_MS: close the connections over a time limit. */
  #sweep(now: number): void {
    this.#lastSweepAt = now;
    for (const connection of [...this.#connections.values()]) {
      const cutOff = connection.chat?.cutOffDue(now);
      const over = this.#forced ? CLOSED.shutdown : cutOff ? 'cut off' : limitReached(this.#limits, connection.times, now);
      if (over) this.#fail(connection, over);
    }
  }
}

/** /dev/null, opened only to hold a descriptor number in reserve; -1 if even that fails. */
function openSpare(): number {
  try {
    return openSync('/dev/null', 'r');
  } catch {
    return -1;
  }
}
