/**
 * Lab 07: the completion model by hand. One thread, one loop, io_uring called directly.
 *
 * Model: labs 01-06 are all readiness models: the kernel says "this socket may be read now" and
 * the program makes the read. Here the program hands the kernel whole operations instead (accept
 * on this socket, receive into this buffer, send these bytes, close this descriptor) as entries
 * in a ring of shared memory, and the kernel answers each with a completion in a second ring:
 * what the system call would have returned. The loop never asks "ready?"; it learns "done". The
 * rings are built by hand in ring.ts (no liburing). The flags are the model's knobs:
 * `--submit batch` passes every entry queued in one loop turn to one io_uring_enter, `--submit
 * each` makes one call per entry; `--recv multishot` arms one RECV per client that keeps
 * completing, into buffers the kernel picks from a registered provided-buffer ring, `--recv
 * single` arms a RECV into the client's own buffer and re-arms it after each completion;
 * `--sqpoll` has a kernel thread watch the submission ring, so submitting is a store to memory.
 *
 * The loop:
 *   1. A non-blocking listening socket (shared/listener.ts); io_uring_setup() and mmap() of the
 *      rings; with --recv multishot, a provided-buffer ring registered (io_uring_register). One
 *      ACCEPT, multishot: it completes once per new client, each completion carrying the client's
 *      descriptor, and stays armed.
 *   2. io_uring_enter(): submit every entry queued since the last call and wait for at least one
 *      completion, at most POLL_MS (50 ms; IORING_ENTER_EXT_ARG with a timespec), or make no call
 *      at all when completions are already waiting and nothing is queued. Then, as in lab 05, Node's
 *      own event loop gets a turn after a wait that found nothing, and every TURN_EVERY_MS while
 *      busy (shared/turn.ts), so Ctrl-C, SIGTERM and the shutdown deadline run.
 *   3. Reap the completion ring. An ACCEPT completion: a new client (past --max-conns, or out of
 *      descriptors, it is closed at once) and a RECV armed for it. The `user_data` of every entry
 *      is the connection's id times 8 plus the operation, so a completion finds its connection in
 *      a map; a connection leaves the map only when its last operation has completed.
 *   4. A RECV completion with bytes: frame them into jobs with the protocol core, answer each
 *      inline, and copy the reply into a send buffer for one SEND. One SEND per client is in
 *      flight at a time; replies meanwhile wait in its queue. A SEND completion: its buffer is free
 *      again; a short send is re-sent from where it stopped, then the queue's next bytes go out.
 *      Over PAUSE_READING_BYTES queued, the client is not read (single: no re-arm; multishot: its
 *      RECV is cancelled with ASYNC_CANCEL) until the queue drains; past --max-pending it is closed.
 *      chat: the bytes are framed into lines (shared/chat.ts) that go to the room (shared/room.ts),
 *      on this one thread as in lab 05. What the room hands a member joins that member's queue as
 *      a reply would, so it leaves as that member's own SEND, one in flight per member. Nothing is
 *      submitted in mid-turn: a line said to N members is N SENDs in the turn's one io_uring_enter
 *      (up to SQ_ENTRIES of them; --submit each: N calls). A member whose queue would pass the
 *      hard limit, or stays over the soft one (shared/chat.ts, OutputLimit), is cut off: out of
 *      the room, a last notice behind its queue, closed once that is sent or after
 *      CUT_OFF_GRACE_MS. A line over the limit: an error line, then the close.
 *   5. A RECV completion of 0 is the peer's FIN: everything it sent is still echoed, then
 *      shutdown(SHUT_WR) and a CLOSE entry. A negative one is an error (-ECONNRESET): close.
 *      Whatever is still in flight on a closing connection is cancelled first (ASYNC_CANCEL), and
 *      the CLOSE is queued only when its last completion has arrived. chat: the FIN is a leave the
 *      others hear of; at shutdown every member leaves quietly and hears goodbye before its CLOSE.
 *
 * Concurrency: interleaving on one thread, as labs 04 and 05. Every open client is served; the
 * kernel does the reads and writes, in parallel with the loop or inline in io_uring_enter.
 *
 * Cost per connection: a socket, a small state object, and operations in flight (a RECV always,
 * a SEND while a reply goes out). With `--recv single` each client also holds its own receive
 * buffer for as long as it is idle; with multishot, clients share the provided buffers, held only
 * between a completion and our reading it. Address space, not memory, until the kernel writes.
 *
 * How it fails: as lab 05, the work runs on the one thread (`--work-us` stalls everyone). The
 * completion model adds its own way to fail, the lesson of this lab: a buffer handed to the kernel
 * is not the program's until its completion arrives. `--reuse-early` shows it on purpose: a send
 * buffer goes back to the pool as soon as its SEND is queued, the next reply overwrites it before
 * the kernel has sent it, and clients get bytes that are not theirs. A completion ring too small
 * for a burst would drop completions on old kernels (IORING_FEAT_NODROP keeps them, and is required).
 *
 * What to watch: `strace -f -e trace=io_uring_enter -p PID`: one call per loop turn carries every
 * SEND of the turn (to_submit) and waits for completions; no read(), no write(), no epoll_wait().
 * With `--submit each`, one call per entry. With `--sqpoll`, calls only to wait (and to wake the
 * kernel thread after it slept), and a thread `iou-sqp-PID` in `top -H`.
 *
 * Waiting without blocking Node: as lab 05, each wait is bounded and Node's loop gets turns.
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
import {
  type Block,
  BufferPool,
  BufferRing,
  type Completion,
  IORING_ACCEPT_MULTISHOT,
  IORING_ASYNC_CANCEL_ALL,
  IORING_ASYNC_CANCEL_FD,
  IORING_CQE_BUFFER_SHIFT,
  IORING_CQE_F_BUFFER,
  IORING_CQE_F_MORE,
  IORING_RECV_MULTISHOT,
  IOSQE_BUFFER_SELECT,
  OP,
  Ring,
} from './ring.js';
import { ioUringUnavailable } from '../../shared/needs.js';

export type Submit = 'each' | 'batch';
export const SUBMITS: readonly Submit[] = ['each', 'batch'];
export type Recv = 'single' | 'multishot';
export const RECVS: readonly Recv[] = ['single', 'multishot'];

export interface RingOptions {
  readonly submit: Submit;
  readonly recv: Recv;
  readonly sqpoll: boolean;
  /** True only with `--reuse-early`: a send buffer is reused before its completion (the bug, on purpose). */
  readonly reuseEarly: boolean;
}

const LAB_ID = '07-completion';

/**
 * The most one RECV takes, as lab 05's read(): the size Node's own sockets read with, so every
 * lab hands the protocol chunks of the same size. Also the size of one SEND's buffer.
 */
const BUFFER_BYTES = 64 * 1024;

/** Send (and `--recv single` receive) buffers mapped at a time when the pool runs dry: 1 MiB of address space. */
const BLOCKS_PER_CHUNK = 16;

/**
 * Buffers in the provided-buffer ring (multishot): 4 MiB shared by every client. A buffer is held
 * only from its completion to the end of our handling of it, so they run out only when more
 * completions than this arrive between two reaps; the RECVs that found none end with ENOBUFS and
 * are re-armed once buffers are back.
 */
const RING_BUFFERS = 64;
const BUFFER_GROUP = 1;

/**
 * Submission-ring slots. A full ring is submitted at once, so this bounds only how many entries
 * one io_uring_enter carries, not how many operations are in flight. chat: a line said in a room
 * of a thousand is a SEND for each of the others, queued in one loop turn; 1024 slots (64 KiB)
 * let them all go to the kernel in one call.
 */
const SQ_ENTRIES = 1024;
/**
 * Completion-ring slots: every operation in flight may complete between two reaps (a RECV and a
 * SEND per client). Overflowing completions are kept by the kernel (IORING_FEAT_NODROP) and
 * flushed at the next io_uring_enter, so this is the fast path's size, not a limit.
 */
const CQ_ENTRIES = 4096;

/** With --sqpoll, the kernel thread spins this long after the last submission, then sleeps. */
const SQPOLL_IDLE_MS = 10;

/** As lab 05: after accept fails for want of descriptors, the ACCEPT is re-armed only after this. */
const ACCEPT_RETRY_MS = 100;

/** As lab 05: queued reply bytes over which a client is not read until they drain: one RECV's worth. */
const PAUSE_READING_BYTES = BUFFER_BYTES;

/** As lab 05: how often every connection's time limits are checked. */
const SWEEP_MS = 100;

/** Most clients one #turnAway closes, so a flood of connects cannot hold the loop. */
const TURN_AWAY_AT_MOST = 1024;

/** The listening socket's id; connections count from 1. */
const LISTENER_ID = 0;

/** user_data = id * KINDS + kind: which connection, and which of its operations completed. */
const KIND = { accept: 1, recv: 2, send: 3, close: 4, cancel: 5 } as const;
const KINDS = 8;

/** In a paused client's held completions: the FIN that came after them. */
const PEER_ENDED = { bufferId: -1, length: 0 } as const;

/** send(2) flag: a peer that has gone gives EPIPE, never SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;

export async function start(options: ServerOptions & RingOptions): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError(`lab ${LAB_ID} needs Linux: it calls io_uring directly`);
  const libc: Libc = await import('../../shared/libc.js');
  const cause = ioUringUnavailable(libc);
  if (cause) throw new UserError(cause);
  const host = await resolveIPv4(options, 'lab 07');
  const ring = new Ring(libc, { entries: SQ_ENTRIES, cqEntries: CQ_ENTRIES, sqpoll: options.sqpoll ? { idleMs: SQPOLL_IDLE_MS } : undefined, restricted: options.sandbox });
  const buffers = options.recv === 'multishot' ? new BufferRing(libc, ring, BUFFER_GROUP, RING_BUFFERS, BUFFER_BYTES) : undefined;
  const { fd: listenFd, port } = openListener(libc, { ...options, host });
  if (options.reuseEarly) {
    options.log.info(
      '--reuse-early: a demonstration of a bug: each send buffer goes back to the pool when its SEND is queued, not when it completes; ' +
        'the next reply overwrites bytes the kernel has not sent yet, and clients get echoes that are not theirs',
    );
  }
  const server = new CompletionServer(libc, ring, buffers, listenFd, options);
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

export const lab: Lab<RingOptions> = { info: labInfo(LAB_ID), start };

// --- The server -------------------------------------------------------------------------------

/** One client: its descriptor, its operations in flight, its queue of replies not yet handed to the kernel. */
interface Connection {
  readonly id: number;
  readonly fd: number;
  readonly session: Session;
  /** chat: the member (its line framer, its place in the room) in place of `session`. */
  chat?: ChatMember;
  readonly record: ConnectionRecord;
  readonly times: ConnectionTimes;
  received: number;
  sent: number;
  /** Replies waiting for the SEND in flight to complete, oldest first (copies: see #send). */
  readonly queue: Uint8Array[];
  /** Reply bytes not yet sent: the queue's and the SEND in flight's. */
  pending: number;
  /** A RECV is in flight (single) or armed (multishot). */
  receiving: boolean;
  /** An ASYNC_CANCEL for the RECV is in flight (to pause reading, or to close). */
  cancellingRecv: boolean;
  /**
   * Multishot: completions with bytes that arrived while the client was paused (the kernel had
   * received them before our cancel reached it), held in their provided buffers, in order, until
   * its replies drain. Answering them at once would queue replies past any bound.
   */
  readonly held: { readonly bufferId: number; readonly length: number }[];
  /** --recv single: the buffer its RECV fills; the kernel's while `receiving`. */
  recvBlock: Block | undefined;
  /** The SEND in flight: its buffer (the kernel's until the completion), its length, how much is sent. */
  sendBlock: Block | undefined;
  sendLength: number;
  sendOffset: number;
  /** SENDs in flight: 0 or 1, except under --reuse-early, which does not wait. */
  sends: number;
  closing: boolean;
  peerEnded: boolean;
  failed: boolean;
  /** The CLOSE entry is queued: nothing else may be. */
  closeQueued: boolean;
}

class CompletionServer {
  readonly #libc: Libc;
  readonly #ring: Ring;
  readonly #buffers: BufferRing | undefined;
  readonly #pool: BufferPool;
  readonly #options: ServerOptions & RingOptions;
  readonly #limits: ConnectionLimits;
  readonly #each: boolean;
  #listenFd: number;
  #accepting = true;
  /** The ACCEPT is armed (multishot: until it completes without F_MORE). */
  #acceptArmed = false;
  /** The kernel lacks multishot ACCEPT (before 5.19): one ACCEPT per client, re-armed. */
  #acceptMultishot = true;
  #acceptPausedUntil = 0;
  #starved = false;
  #spareFd = openSpare();
  #nextId = LISTENER_ID + 1;
  readonly #connections = new Map<number, Connection>();
  /** Multishot: clients whose RECV ended with ENOBUFS, re-armed once buffers have come back. */
  readonly #awaitingBuffers = new Set<Connection>();
  /** Provided buffers given back since the last turn. */
  #buffersReturned = 0;
  readonly #turns: EventLoopTurns;
  #lastSweepAt = 0;
  #forced = false;
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);
  /** chat: the room is a set of connections in this one thread, as in lab 04. */
  readonly #chatting: boolean;
  readonly #room = new LocalRoom();
  /** chat: how much may wait for one member, and for how long, before it is cut off (shared/chat.ts). */
  readonly #queueLimits: QueueLimits;

  constructor(libc: Libc, ring: Ring, buffers: BufferRing | undefined, listenFd: number, options: ServerOptions & RingOptions) {
    this.#libc = libc;
    this.#ring = ring;
    this.#buffers = buffers;
    this.#pool = new BufferPool(libc, BUFFER_BYTES, BLOCKS_PER_CHUNK);
    this.#turns = new EventLoopTurns(libc);
    this.#listenFd = listenFd;
    this.#options = options;
    this.#limits = options.limits;
    this.#each = options.submit === 'each';
    this.#chatting = options.protocol.protocol === 'chat';
    this.#queueLimits = queueLimits(options.limits.maxPendingBytes);
    // Step 1.
    this.#armAccept();
  }

  /** Steps 2 to 5, until the listening socket is closed and the last client has gone. */
  async run(): Promise<void> {
    await this.#turns.take();
    const handle = (completion: Completion) => this.#dispatch(completion);
    try {
      while (this.#accepting || this.#listenFd >= 0 || this.#connections.size > 0) {
        // Step 2. One io_uring_enter submits the turn's entries and waits (or none: see Ring).
        this.#ring.submitAndWait(POLL_MS);
        // Step 3.
        const reaped = this.#ring.reap(handle);
        if (this.#buffers) this.#publishBuffers();
        const now = performance.now();
        if (this.#acceptPausedUntil > 0 && now >= this.#acceptPausedUntil) {
          this.#acceptPausedUntil = 0;
          this.#armAccept();
        }
        if (now - this.#lastSweepAt >= SWEEP_MS) this.#sweep(now);
        if (reaped === 0 || this.#turns.due(now)) await this.#turns.take();
      }
    } finally {
      this.#ring.close();
      if (this.#spareFd >= 0) closeSync(this.#spareFd);
    }
  }

  /**
   * Shutdown, step 1. shutdown(SHUT_RD) takes the socket out of LISTEN at once (the kernel resets
   * whoever waits in its queue, and the multishot ACCEPT completes without F_MORE); the descriptor
   * is closed when that completion arrives, for until then the kernel's ACCEPT still holds it.
   */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    this.#libc.shutdown(this.#listenFd, this.#libc.SHUT_RD);
    if (this.#acceptArmed) this.#cancel(LISTENER_ID, KIND.accept);
    else this.#closeListener();
  }

  /** Shutdown, step 2: each client finishes what it is doing (http: its current request). */
  finishAll(): void {
    for (const connection of this.#connections.values()) {
      if (connection.chat) connection.chat.stop();
      else if (connection.session.stopAfterCurrent()) this.#closeAfterReplies(connection);
    }
    this.#submitNow();
  }

  /** Shutdown, step 3, at the deadline: close every client now. */
  force(): void {
    this.#forced = true;
    for (const connection of [...this.#connections.values()]) this.#fail(connection, CLOSED.shutdown);
    this.#submitNow();
  }

  /** One completion: the ACCEPT, or one of a client's operations (steps 3, 4 and 5). */
  #dispatch({ userData, res, flags }: Completion): void {
    const kind = userData % KINDS;
    const id = (userData - kind) / KINDS;
    if (kind === KIND.cancel) return; // the cancelled operation's own completion says what happened
    if (id === LISTENER_ID) {
      this.#accepted(res, flags);
      return;
    }
    const connection = this.#connections.get(id);
    if (!connection) return;
    if (kind === KIND.recv) this.#received(connection, res, flags);
    else if (kind === KIND.send) this.#sentSome(connection, res);
    else if (kind === KIND.close) this.#closed(connection);
  }

  /** Queues one entry; with --submit each, submits it at once (one io_uring_enter per entry). */
  #prepare(opcode: number, fd: number, id: number, kind: number): number {
    return this.#ring.prepare(opcode, fd, id * KINDS + kind);
  }

  #queued(): void {
    if (this.#each) this.#ring.submit();
  }

  /** Outside the loop's own turn (shutdown runs in Node's turn): submit what was queued now. */
  #submitNow(): void {
    this.#ring.submit();
  }

  #cancel(id: number, kind: number): void {
    const slot = this.#prepare(OP.ASYNC_CANCEL, -1, id, KIND.cancel);
    this.#ring.setAddress(slot, id * KINDS + kind); // sqe.addr: the user_data to cancel
    this.#queued();
  }

  // --- Step 3: accepting --------------------------------------------------------------------

  #armAccept(): void {
    if (!this.#accepting || this.#acceptArmed) return;
    const slot = this.#prepare(OP.ACCEPT, this.#listenFd, LISTENER_ID, KIND.accept);
    if (this.#acceptMultishot) this.#ring.setIoprio(slot, IORING_ACCEPT_MULTISHOT);
    // accept_flags. Non-blocking matters even here: an operation the kernel cannot finish by
    // polling goes to one of its io-wq worker threads, which on a blocking socket would sit in
    // send() for as long as a slow client takes. Non-blocking, it completes with -EAGAIN instead.
    this.#ring.setOpFlags(slot, this.#libc.SOCK_CLOEXEC | this.#libc.SOCK_NONBLOCK);
    this.#acceptArmed = true;
    this.#queued();
  }

  #accepted(res: number, flags: number): void {
    const libc = this.#libc;
    const more = (flags & IORING_CQE_F_MORE) !== 0;
    if (!more) this.#acceptArmed = false;
    if (res >= 0) {
      this.#starved = false;
      if (this.#accepting) this.#open(res, performance.now());
      else libc.close(res);
    } else {
      const error = -res;
      if (!this.#accepting) {
        // The cancel, or the shutdown(SHUT_RD), ended it.
      } else if (error === libc.EINVAL && this.#acceptMultishot) {
        this.#acceptMultishot = false; // a kernel before 5.19: accept one client per entry
      } else if (error === libc.EMFILE || error === libc.ENFILE || error === libc.ENOBUFS || error === libc.ENOMEM) {
        if (!this.#starved) this.#options.log.warn(`accept: ${libc.errnoName(error)}; turning clients away until descriptors free up`);
        this.#starved = true;
        if (error === libc.EMFILE || error === libc.ENFILE) this.#turnAway();
        if (!more) {
          this.#acceptPausedUntil = performance.now() + ACCEPT_RETRY_MS;
          return;
        }
      } else if (!(error === libc.EINTR || error === libc.EAGAIN || error === libc.ECANCELED || libc.ACCEPT_RETRY_ERRORS.has(error))) {
        throw libc.callError('io_uring accept', error);
      }
    }
    if (!this.#acceptArmed) {
      if (this.#accepting) this.#armAccept();
      else this.#closeListener();
    }
  }

  /** The buffers given back during the reap go to the kernel; RECVs that found none are re-armed. */
  #publishBuffers(): void {
    this.#buffers!.publish();
    if (this.#buffersReturned === 0) return;
    this.#buffersReturned = 0;
    const waiting = [...this.#awaitingBuffers];
    this.#awaitingBuffers.clear();
    for (const connection of waiting) if (this.#connections.has(connection.id)) this.#armRecv(connection);
  }

  #giveBack(bufferId: number): void {
    this.#buffers!.giveBack(bufferId);
    this.#buffersReturned++;
  }

  #closeListener(): void {
    if (this.#listenFd < 0) return;
    this.#libc.close(this.#listenFd);
    this.#listenFd = -1;
  }

  /**
   * As lab 05: out of descriptors, give the spare one back, accept a client with it and close it
   * at once, then take the spare again; until the queue is empty (accept4 on the non-blocking
   * listening socket says EAGAIN), so every client waiting learns now that it will not be served.
   * One per ACCEPT completion would turn away one client per ACCEPT_RETRY_MS.
   */
  #turnAway(): void {
    for (let turnedAway = 0; this.#spareFd >= 0 && turnedAway < TURN_AWAY_AT_MOST; turnedAway++) {
      closeSync(this.#spareFd);
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = this.#libc.accept4(this.#listenFd, this.#peerAddress, this.#peerAddressLength, this.#libc.SOCK_CLOEXEC);
      if (fd >= 0) this.#libc.close(fd);
      this.#spareFd = openSpare();
      if (fd < 0) return;
    }
  }

  #open(fd: number, now: number): void {
    const libc = this.#libc;
    if (this.#connections.size >= this.#options.maxConns) {
      libc.close(fd);
      return;
    }
    if (this.#options.noDelay) libc.setsockopt(fd, libc.IPPROTO_TCP, libc.TCP_NODELAY, ON, 4);
    // A multishot ACCEPT gives no address (one buffer could not serve many completions): ask.
    this.#peerAddressLength[0] = this.#peerAddress.length;
    const peer = libc.getpeername(fd, this.#peerAddress, this.#peerAddressLength) === 0 ? libc.formatSockaddrIn(this.#peerAddress) : 'unknown peer';
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
      pending: 0,
      held: [],
      receiving: false,
      cancellingRecv: false,
      recvBlock: undefined,
      sendBlock: undefined,
      sendLength: 0,
      sendOffset: 0,
      sends: 0,
      closing: false,
      peerEnded: false,
      failed: false,
      closeQueued: false,
    };
    this.#connections.set(connection.id, connection);
    this.#armRecv(connection);
    if (this.#chatting) {
      // The room's bytes join this client's queue as a reply would, so they leave as its own SEND,
      // one in flight per member. Nothing is submitted here: a line said to N members is N SENDs
      // in the turn's one io_uring_enter (--submit each: N calls).
      connection.chat = new ChatMember(
        this.#room,
        {
          record,
          pending: () => connection.pending,
          open: () => !connection.closing && this.#connections.has(connection.id),
          send: (bytes, shared) => this.#send(connection, bytes, shared),
          closeAfterReplies: () => this.#closeAfterReplies(connection),
        },
        this.#queueLimits,
        this.#options.log,
      );
      connection.chat.join();
    }
  }

  // --- Step 4: receiving, answering, sending ------------------------------------------------

  /** A RECV for this client, unless one is armed or it is not to be read now. */
  #armRecv(connection: Connection): void {
    if (connection.receiving || connection.closeQueued || !this.#reading(connection)) return;
    const slot = this.#prepare(OP.RECV, connection.fd, connection.id, KIND.recv);
    if (this.#buffers) {
      // Multishot: no buffer of ours; the kernel picks one from the group for each completion.
      this.#ring.setIoprio(slot, IORING_RECV_MULTISHOT);
      this.#ring.setFlags(slot, IOSQE_BUFFER_SELECT);
      this.#ring.setBufferGroup(slot, this.#buffers.group);
    } else {
      connection.recvBlock ??= this.#pool.take();
      this.#ring.setAddress(slot, connection.recvBlock.address, BUFFER_BYTES);
    }
    connection.receiving = true;
    this.#queued();
  }

  #received(connection: Connection, res: number, flags: number): void {
    const libc = this.#libc;
    // Single: every completion ends the RECV. Multishot: only one without F_MORE does.
    if (!(flags & IORING_CQE_F_MORE)) {
      connection.receiving = false;
      connection.cancellingRecv = false;
    }
    const now = performance.now();
    if (res > 0) {
      if (flags & IORING_CQE_F_BUFFER) {
        const bufferId = flags >>> IORING_CQE_BUFFER_SHIFT;
        if (connection.closing || connection.failed) this.#giveBack(bufferId);
        else if (connection.held.length > 0 || !this.#reading(connection)) connection.held.push({ bufferId, length: res });
        else this.#receivedInto(connection, bufferId, res, now);
      } else if (!connection.closing && !connection.failed) {
        this.#take(connection, connection.recvBlock!.bytes.subarray(0, res), now);
      }
    } else if (res === 0) {
      // Step 5: the peer's FIN. Everything it sent is read; the replies still go out.
      if (connection.held.length > 0) connection.held.push(PEER_ENDED);
      else if (!connection.closing && !connection.failed) this.#peerEnded(connection, now);
    } else if (-res === libc.ENOBUFS) {
      // Multishot: the provided buffers ran out. Re-armed once some have come back.
      if (!connection.closing && !connection.failed) {
        this.#awaitingBuffers.add(connection);
        return;
      }
    } else if (-res !== libc.ECANCELED && -res !== libc.EAGAIN) {
      this.#fail(connection, libc.errnoName(-res));
    }
    if (!this.#connections.has(connection.id)) return;
    // Multishot: over the pause threshold, the armed RECV must be cancelled, or it keeps completing.
    if (connection.receiving && !this.#reading(connection) && !connection.cancellingRecv) {
      connection.cancellingRecv = true;
      this.#cancel(connection.id, KIND.recv);
    }
    if (!connection.receiving) {
      if (connection.closing || connection.failed) this.#closeWhenIdle(connection);
      else this.#armRecv(connection);
    }
  }

  #peerEnded(connection: Connection, now: number): void {
    connection.peerEnded = true;
    if (connection.chat) connection.chat.leave();
    else this.#answer(connection, connection.session.end(), now);
    this.#closeAfterReplies(connection);
  }

  /** Bytes the kernel put in a provided buffer: answered, then the buffer goes back. */
  #receivedInto(connection: Connection, bufferId: number, length: number, now: number): void {
    this.#take(connection, this.#buffers!.bytes(bufferId, length), now);
    // The bytes are read (replies that point into them were copied): the buffer goes back.
    this.#giveBack(bufferId);
  }

  #take(connection: Connection, bytes: Buffer, now: number): void {
    connection.received += bytes.length;
    connection.times.lastMovedAt = now;
    if (connection.chat) connection.chat.receive(bytes);
    else this.#answer(connection, connection.session.receive(bytes), now);
  }

  /** A paused client's replies drained: answer what it had sent meanwhile, until it pauses again. */
  #resume(connection: Connection): void {
    const now = performance.now();
    while (connection.held.length > 0 && this.#reading(connection)) {
      const { bufferId, length } = connection.held.shift()!;
      if (bufferId === PEER_ENDED.bufferId) this.#peerEnded(connection, now);
      else this.#receivedInto(connection, bufferId, length, now);
    }
    if (this.#connections.has(connection.id) && !connection.closeQueued) this.#armRecv(connection);
  }

  /** Answers each job inline and sends its reply; a close the protocol asks for follows them. */
  #answer(connection: Connection, step: Step, now: number): void {
    for (const job of step.jobs) {
      this.#send(connection, respond(job, this.#options.work));
      if (connection.failed) return;
    }
    if (step.close) this.#closeAfterReplies(connection);
    const times = connection.times;
    if (!connection.session.headPending) times.headStartedAt = -1;
    else if (times.headStartedAt < 0) times.headStartedAt = now;
  }

  /**
   * A reply goes into a send buffer for one SEND, or, while a SEND is in flight, waits in the
   * queue, copied: an echo reply is a view of the receive buffer, which the kernel fills again.
   * `shared`: bytes nobody will change (chat: one Buffer for every member of the room) wait as
   * they are; a copy per member per line would be a thousand copies of each line in a big room.
   */
  #send(connection: Connection, reply: Uint8Array, shared = false): void {
    if (reply.length === 0) return;
    connection.pending += reply.length;
    const over = overPending(this.#limits, connection.pending);
    if (over) {
      this.#fail(connection, over);
      return;
    }
    if (connection.sends > 0 && !this.#options.reuseEarly) {
      connection.queue.push(shared ? reply : Uint8Array.prototype.slice.call(reply));
      return;
    }
    connection.queue.push(reply);
    // (--reuse-early does not wait for a SEND to complete: all of it goes out at once.)
    do this.#sendQueued(connection);
    while (this.#options.reuseEarly && connection.queue.length > 0);
  }

  /** Copies the queue's first bytes (up to a buffer) into a send buffer and queues the SEND. */
  #sendQueued(connection: Connection): void {
    const block = this.#pool.take();
    let length = 0;
    const queue = connection.queue;
    while (queue.length > 0 && length < BUFFER_BYTES) {
      const head = queue[0]!;
      const take = Math.min(head.length, BUFFER_BYTES - length);
      block.bytes.set(take === head.length ? head : head.subarray(0, take), length);
      length += take;
      if (take === head.length) queue.shift();
      else queue[0] = head.subarray(take);
    }
    this.#submitSend(connection, block, 0, length);
    if (this.#options.reuseEarly) {
      // THE BUG, on purpose: the buffer is back in the pool while the kernel may not yet have read
      // it (the SEND is not even submitted in batch mode). The next reply takes it and overwrites it.
      this.#pool.give(block);
      connection.sendBlock = undefined;
    }
  }

  #submitSend(connection: Connection, block: Block, offset: number, length: number): void {
    connection.sendBlock = block;
    connection.sendOffset = offset;
    connection.sendLength = length;
    connection.sends++;
    const slot = this.#prepare(OP.SEND, connection.fd, connection.id, KIND.send);
    this.#ring.setAddress(slot, block.address + offset, length - offset);
    this.#ring.setOpFlags(slot, MSG_NOSIGNAL);
    this.#queued();
  }

  /** A SEND completed: `res` bytes went out (a short send continues), or it failed. */
  #sentSome(connection: Connection, res: number): void {
    connection.sends--;
    const block = connection.sendBlock;
    if (-res === this.#libc.EAGAIN && !connection.failed && block) {
      // The kernel could not send and gave up (non-blocking socket, see #armAccept): again.
      this.#submitSend(connection, block, connection.sendOffset, connection.sendLength);
      return;
    }
    if (res < 0) {
      if (block && connection.sends === 0) this.#releaseSend(connection);
      if (-res !== this.#libc.ECANCELED) this.#fail(connection, this.#libc.errnoName(-res));
      this.#closeWhenIdle(connection);
      return;
    }
    connection.sent += res;
    connection.pending -= res;
    connection.times.lastMovedAt = performance.now();
    if (this.#options.reuseEarly) {
      // The buffer went back already; what the kernel sent from it is whatever was there by then,
      // and the rest of a short send is lost (its bytes are gone from the buffer anyway).
      if (connection.sends === 0) connection.pending = 0;
      if (connection.closing) this.#closeWhenIdle(connection);
      else this.#resume(connection);
      return;
    }
    if (connection.failed) {
      this.#releaseSend(connection);
      this.#closeWhenIdle(connection);
      return;
    }
    const offset = connection.sendOffset + res;
    if (offset < connection.sendLength) {
      this.#submitSend(connection, block!, offset, connection.sendLength); // a short send: the rest, from the same buffer
      return;
    }
    // Now, and only now, the buffer is ours again.
    this.#releaseSend(connection);
    if (connection.queue.length > 0) this.#sendQueued(connection);
    else if (connection.closing) this.#closeWhenIdle(connection);
    if (this.#reading(connection)) this.#resume(connection); // a client paused over PAUSE_READING_BYTES
  }

  #releaseSend(connection: Connection): void {
    if (connection.sendBlock) this.#pool.give(connection.sendBlock);
    connection.sendBlock = undefined;
  }

  /** Read while not closing and not over PAUSE_READING_BYTES of queued replies (backpressure). */
  #reading(connection: Connection): boolean {
    return !connection.closing && !connection.failed && connection.pending <= PAUSE_READING_BYTES;
  }

  // --- Step 5: closing ------------------------------------------------------------------------

  #closeAfterReplies(connection: Connection): void {
    if (!this.#connections.has(connection.id)) return;
    if (!connection.closing) {
      connection.closing = true;
      connection.record.closeAfterReplies(connection.peerEnded);
    }
    this.#closeWhenIdle(connection);
  }

  /**
   * The CLOSE waits for every operation in flight: a descriptor closed under a pending RECV
   * stays open in the kernel (the RECV holds it), and its number could be reused meanwhile. The
   * RECV of a closing client is cancelled; a SEND is let finish, unless the connection failed.
   */
  #closeWhenIdle(connection: Connection): void {
    if (connection.closeQueued || !this.#connections.has(connection.id)) return;
    if (!connection.failed && (connection.pending > 0 || connection.sends > 0)) return;
    if (connection.receiving) {
      if (!connection.cancellingRecv) {
        connection.cancellingRecv = true;
        this.#cancel(connection.id, KIND.recv);
      }
      return;
    }
    if (connection.sends > 0) return; // a failed connection's SEND: cancelled in #fail
    if (!connection.failed) this.#libc.shutdown(connection.fd, this.#libc.SHUT_WR);
    connection.closeQueued = true;
    this.#prepare(OP.CLOSE, connection.fd, connection.id, KIND.close);
    this.#queued();
  }

  /** The CLOSE completed: the connection is gone, and its buffers are ours for good. */
  #closed(connection: Connection): void {
    for (const { bufferId } of connection.held) if (bufferId !== PEER_ENDED.bufferId) this.#giveBack(bufferId);
    connection.held.length = 0;
    this.#awaitingBuffers.delete(connection);
    if (connection.recvBlock) this.#pool.give(connection.recvBlock);
    connection.recvBlock = undefined;
    connection.session.close();
    connection.chat?.leave();
    this.#connections.delete(connection.id);
    connection.record.disconnected(connection.received, connection.sent);
  }

  /** Ends a connection now: every operation on its descriptor is cancelled, then it is closed. */
  #fail(connection: Connection, reason: string): void {
    if (connection.failed || !this.#connections.has(connection.id)) return;
    connection.failed = true;
    connection.record.fail(reason);
    // chat: out of the room now, not at the CLOSE's completion: nothing more is queued for it.
    connection.chat?.leave();
    connection.queue.length = 0;
    connection.pending = 0;
    if (connection.receiving || connection.sends > 0) {
      connection.cancellingRecv = true;
      const slot = this.#prepare(OP.ASYNC_CANCEL, connection.fd, connection.id, KIND.cancel);
      this.#ring.setOpFlags(slot, IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL); // cancel_flags
      this.#queued();
    }
    this.#closeWhenIdle(connection);
  }

  /** Every SWEEP_MS: close the connections over a time limit. */
  #sweep(now: number): void {
    this.#lastSweepAt = now;
    for (const connection of [...this.#connections.values()]) {
      if (connection.failed) continue;
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
