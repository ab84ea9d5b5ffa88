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
 *      descriptors, it is closed at once) and a RECV armed for it. Every entry carries the
 *      connection's id (ring.ts puts it and the opcode in `user_data`), so a completion finds its
 *      connection in a map; a connection leaves the map only when its last operation has completed.
 *   4. A RECV completion with bytes: hand them to the connection's conversation
 *      (shared/conversation.ts), whose replies are worked out inline and join its outbox, and copy
 *      the outbox into a send buffer for one SEND. One SEND per client is in flight at a time;
 *      replies meanwhile wait in the outbox. A SEND completion: its buffer is free again; a short
 *      send is re-sent from where it stopped, then the outbox's next bytes go out. Over
 *      PAUSE_READING_BYTES queued, the client is not read (single: no re-arm; multishot: its RECV
 *      is cancelled with ASYNC_CANCEL) until the queue drains; past --max-pending it is closed.
 *      A room's lines for a member join its outbox as replies do, so they leave as that member's
 *      own SEND, one in flight per member. Nothing is submitted in mid-turn: a line said to N
 *      members is N SENDs in the turn's one io_uring_enter (up to SQ_ENTRIES of them; --submit
 *      each: N calls).
 *      Files (`--protocol files`): a file request's turn in the outbox starts its lookup, an
 *      OPENAT and a STATX entry (the shared rules decide: shared/file-open.ts), then its range
 *      goes by `--copy`: READ entries into the client's send buffer, each followed by its SEND,
 *      or SPLICE entries through the client's pipe (file-slot.ts). One file operation per client
 *      is in flight; the disk is read while the loop serves everyone else.
 *   5. A RECV completion of 0 is the peer's FIN: everything it sent is still answered, then
 *      shutdown(SHUT_WR) and a CLOSE entry. A negative one is an error (-ECONNRESET): close.
 *      Whatever is still in flight on a closing connection is cancelled first (ASYNC_CANCEL), and
 *      the CLOSE is queued only when its last completion has arrived.
 *
 * Concurrency: interleaving on one thread, as labs 04 and 05. Every open client is served; the
 * kernel does the reads and writes, in parallel with the loop or inline in io_uring_enter.
 *
 * Cost per connection: a socket, a small state object, and operations in flight (a RECV always,
 * a SEND while a reply goes out). With `--recv single` each client also holds its own receive
 * buffer for as long as it is idle; with multishot, clients share the provided buffers, held only
 * between a completion and our reading it. Address space, not memory, until the kernel writes.
 *
 * Reading a file: a regular file is always "ready" to a readiness loop, so lab 05's sendfile()
 * or pread() of a page not in memory sleeps on the disk with every client waiting; here the READ
 * or SPLICE is the kernel's to finish, and its completion comes when the disk has answered. (The
 * lookup's realpath still runs on the loop: metadata, see shared/file-open.ts.)
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
 * The house around the loop (the connection record and table, the accept guard, the sweep of the
 * time limits every SWEEP_MS, the start-up and the shutdown) is the by-hand kit's, shared/kit/,
 * as lab 05's is; the rings are in ring.ts. What is left here is the completion loop.
 */

import { HandConnection, READ_BYTES } from '../../shared/kit/connection.js';
import { type Ground, HandServer, LISTENER_ID } from '../../shared/kit/server.js';
import { startByHand } from '../../shared/kit/start.js';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { ioUringUnavailable } from '../../shared/needs.js';
import { POLL_MS } from '../../shared/turn.js';
import { labInfo } from '../index.js';
import { FileSlot } from './file-slot.js';
import { type Block, type BufferPool, type BufferRing, type Completion, IORING_ACCEPT_MULTISHOT, OP, openRing, type Ring, type RingOptions, SendSlot } from './ring.js';

export function start(options: ServerOptions & RingOptions): Promise<RunningServer> {
  return startByHand(
    {
      name: 'lab 07',
      calls: 'io_uring',
      turnAway: true,
      unmet: (libc) => ioUringUnavailable(libc),
      build: (ground) => new CompletionServer(ground),
    },
    options,
  );
}

export const lab: Lab<RingOptions> = { info: labInfo('07-completion'), start };

// --- The server -------------------------------------------------------------------------------

/** One client: the kit's record, and its operations in flight. */
class Client extends HandConnection {
  /** A RECV is in flight (single) or armed (multishot). */
  receiving = false;
  /** An ASYNC_CANCEL for the RECV is in flight (to pause reading, or to close). */
  cancellingRecv = false;
  /** --recv single: the buffer its RECV fills; the kernel's while `receiving`. */
  recvBlock: Block | undefined;
  /** Its SEND in flight, and the buffer the kernel holds for it (ring.ts). */
  sending!: SendSlot;
  /** Its file operation in flight: a lookup's OPENAT or STATX, a READ, a SPLICE (file-slot.ts). */
  file!: FileSlot;
  /** The CLOSE entry is queued: nothing else may be. */
  closeQueued = false;
}

class CompletionServer extends HandServer<Client, RingOptions> {
  readonly #ring: Ring;
  readonly #buffers: BufferRing | undefined;
  readonly #pool: BufferPool;
  /** The ACCEPT is armed (multishot: until it completes without F_MORE). */
  #acceptArmed = false;
  /** The kernel lacks multishot ACCEPT (before 5.19): one ACCEPT per client, re-armed. */
  #acceptMultishot = true;
  /** Multishot: clients whose RECV ended with ENOBUFS, re-armed once buffers have come back. */
  readonly #awaitingBuffers = new Set<Client>();

  constructor(ground: Ground<RingOptions>) {
    super(ground);
    ({ ring: this.#ring, buffers: this.#buffers, pool: this.#pool } = openRing(ground.libc, ground.options, READ_BYTES));
    // Step 1.
    this.#armAccept();
  }

  /** Steps 2 to 5, until the listening socket is closed and the last client has gone. */
  async run(): Promise<void> {
    await this.turns.take();
    const handle = (completion: Completion) => this.#dispatch(completion);
    try {
      while (this.accepting || this.listenFd >= 0 || this.connections.size > 0) {
        // Step 2. One io_uring_enter submits the turn's entries and waits (or none: see Ring).
        this.#ring.submitAndWait(POLL_MS);
        // Step 3.
        const reaped = this.#ring.reap(handle);
        // Buffers came back during the reap (and went to the kernel): RECVs that found none are re-armed.
        if (this.#buffers?.publish()) {
          for (const client of this.#awaitingBuffers) this.#armRecv(client);
          this.#awaitingBuffers.clear();
        }
        const turn = this.afterWake(performance.now(), reaped === 0);
        if (turn) await turn;
      }
    } finally {
      this.#ring.close();
      this.closeHouse();
    }
  }

  /**
   * Shutdown, step 1. shutdown(SHUT_RD) takes the socket out of LISTEN at once (the kernel resets
   * whoever waits in its queue, and the multishot ACCEPT completes without F_MORE); the descriptor
   * is closed when that completion arrives, for until then the kernel's ACCEPT still holds it.
   */
  protected stopListening(): void {
    this.libc.shutdown(this.listenFd, this.libc.SHUT_RD);
    if (this.#acceptArmed) this.#ring.cancel(LISTENER_ID, OP.ACCEPT);
    else this.closeListener();
  }

  protected resumeAccepting(): void {
    this.#armAccept();
  }

  /** Shutdown runs in Node's turn, outside the loop's: what it queued is submitted now. */
  protected override afterShutdownStep(): void {
    this.#ring.submit();
  }

  /** One completion: the ACCEPT, or one of a client's operations (steps 3, 4 and 5). */
  #dispatch(completion: Completion): void {
    const { id, op, res } = completion;
    if (op === OP.ASYNC_CANCEL) return; // the cancelled operation's own completion says what happened
    if (id === LISTENER_ID) {
      this.#accepted(res, completion.more);
      return;
    }
    const client = this.connections.get(id);
    if (!client) return;
    if (op === OP.RECV) this.#received(client, completion);
    else if (op === OP.SEND) this.#sent(client, res);
    else if (op === OP.CLOSE) this.#closed(client);
    else client.file.completed(completion, client.failed);
  }

  // --- Step 3: accepting --------------------------------------------------------------------

  #armAccept(): void {
    if (!this.accepting || this.#acceptArmed) return;
    // accept_flags. Non-blocking matters even here: an operation the kernel cannot finish by
    // polling goes to one of its io-wq worker threads, which on a blocking socket would sit in
    // send() for as long as a slow client takes. Non-blocking, it completes with -EAGAIN instead.
    const opFlags = this.libc.SOCK_CLOEXEC | this.libc.SOCK_NONBLOCK;
    this.#ring.queue({ op: OP.ACCEPT, fd: this.listenFd, id: LISTENER_ID, ioprio: this.#acceptMultishot ? IORING_ACCEPT_MULTISHOT : 0, opFlags });
    this.#acceptArmed = true;
  }

  #accepted(res: number, more: boolean): void {
    const libc = this.libc;
    const now = performance.now();
    if (!more) this.#acceptArmed = false;
    if (res >= 0) {
      this.guard.accepted();
      if (this.accepting) this.#open(res, now);
      else libc.close(res);
    } else if (!this.accepting || -res === libc.ECANCELED) {
      // The cancel, or the shutdown(SHUT_RD), ended it.
    } else if (-res === libc.EINVAL && this.#acceptMultishot) {
      this.#acceptMultishot = false; // a kernel before 5.19: accept one client per entry
    } else if (this.guard.refused(-res, this.listenFd, now) === 'paused' && !more) {
      return; // re-armed once the guard's pause is over (resumeAccepting)
    }
    if (!this.#acceptArmed) {
      if (this.accepting) this.#armAccept();
      else this.closeListener();
    }
  }

  #open(fd: number, now: number): void {
    // A multishot ACCEPT gives no address: the kit asks (getpeername).
    const client = this.admit(fd, undefined, now, (admission) => new Client(admission));
    if (!client) return;
    client.sending = new SendSlot(this.#ring, this.#pool, fd, client.id, this.options.reuseEarly);
    client.file = new FileSlot(this.libc, this.#ring, this.#pool, this.options, client, () => this.#carryOn(client));
    this.#armRecv(client);
    client.conversation.start();
  }

  // --- Step 4: receiving and sending --------------------------------------------------------

  /** A RECV for this client, unless one is armed or it is not to be read now. */
  #armRecv(client: Client): void {
    if (client.receiving || client.closeQueued || !client.reading) return;
    if (this.#buffers) {
      // Multishot: no buffer of ours; the kernel picks one from the group for each completion.
      this.#ring.queue(this.#buffers.recv(client.fd, client.id));
    } else {
      client.recvBlock ??= this.#pool.take();
      this.#ring.queue({ op: OP.RECV, fd: client.fd, id: client.id, address: client.recvBlock.address, length: READ_BYTES });
    }
    client.receiving = true;
  }

  #received(client: Client, { res, more, bufferId }: Completion): void {
    const libc = this.libc;
    // Single: every completion ends the RECV. Multishot: only one without F_MORE does.
    if (!more) {
      client.receiving = false;
      client.cancellingRecv = false;
    }
    if (res > 0 && bufferId >= 0) {
      // Multishot: the kernel picked a provided buffer. Handed on (copied, if the client is
      // paused: the kit holds it), then the buffer goes back.
      client.took(this.#buffers!.bytes(bufferId, res), performance.now());
      this.#buffers!.giveBack(bufferId);
    } else if (res > 0) {
      client.took(client.recvBlock!.bytes.subarray(0, res), performance.now());
    } else if (res === 0) {
      // Step 5: the peer's FIN. Everything it sent is read; the replies still go out.
      client.peerEnd();
    } else if (-res === libc.ENOBUFS && !client.closing && !client.failed) {
      // Multishot: the provided buffers ran out. Re-armed once some have come back.
      this.#awaitingBuffers.add(client);
      return;
    } else if (-res !== libc.ECANCELED && -res !== libc.EAGAIN && -res !== libc.ENOBUFS) {
      client.fail(libc.errnoName(-res));
    }
    if (client.gone) return;
    // Multishot: over the pause threshold, the armed RECV must be cancelled, or it keeps completing.
    if (client.receiving && !client.reading && !client.cancellingRecv) {
      client.cancellingRecv = true;
      this.#ring.cancel(client.id, OP.RECV);
    }
    if (!client.receiving) {
      if (client.closing || client.failed) this.#closeWhenIdle(client);
      else this.#armRecv(client);
    }
  }

  /**
   * Something joined the client's outbox, or what was in flight completed: the outbox's next
   * step, unless a SEND or a file operation is in flight (it waits in the outbox, copied there:
   * shared/kit/outbox.ts). Bytes are copied into a send buffer for one SEND; while the outbox
   * holds a file, its file slot takes the step (file-slot.ts: a lookup, a READ, a SPLICE). Nothing
   * is submitted here: a line said to N members is N SENDs in the turn's one io_uring_enter.
   */
  transmit(client: Client): void {
    if ((client.sending.inFlight > 0 && !this.options.reuseEarly) || client.file.inFlight) return;
    if (client.outbox.files > 0) return client.file.next();
    // (--reuse-early does not wait for a SEND to complete: all of it goes out at once.)
    while (client.sending.start((into) => client.outbox.takeBytes(into)) && this.options.reuseEarly);
  }

  /** A SEND completed: its bytes went out (a short send goes on by itself, ring.ts), or it failed. */
  #sent(client: Client, res: number): void {
    const sent = client.sending.completed(res, client.failed);
    if (sent === 'again') return;
    if (sent < 0) {
      if (-sent !== this.libc.ECANCELED) client.fail(this.libc.errnoName(-sent));
      this.#closeWhenIdle(client);
      return;
    }
    client.wrote(sent);
    client.outbox.pending -= sent;
    // --reuse-early: what the kernel sent is whatever was in the buffer by then, and the rest of a
    // short send is lost; otherwise a short send is still in flight.
    if (this.options.reuseEarly && client.sending.inFlight === 0) client.outbox.pending = 0;
    else if (client.sending.inFlight > 0) return;
    this.#carryOn(client);
  }

  /** What was in flight is done: the outbox's next step, or the close it waited for; then a paused client is read again. */
  #carryOn(client: Client): void {
    if (!client.failed && !client.outbox.empty) this.transmit(client);
    else if (client.closing || client.failed) this.#closeWhenIdle(client);
    // A client paused over the kit's PAUSE_READING_BYTES, or while it had files queued: what it
    // sent meanwhile is handed on (the kit held it), then it is read again.
    client.resume(performance.now());
    if (!client.gone) this.#armRecv(client);
  }

  // --- Step 5: closing ------------------------------------------------------------------------

  closeWhenSent(client: Client): void {
    this.#closeWhenIdle(client);
  }

  /** The client failed (the kit dropped its outbox): every operation on its descriptor is cancelled, then it is closed. */
  abandon(client: Client): void {
    if (client.receiving || client.sending.inFlight > 0 || client.file.inFlight) {
      client.cancellingRecv = true;
      this.#ring.cancelAll(client.fd, client.id);
    }
    this.#closeWhenIdle(client);
  }

  /**
   * The CLOSE waits for every operation in flight: a descriptor closed under a pending RECV
   * stays open in the kernel (the RECV holds it), and its number could be reused meanwhile. The
   * RECV of a closing client is cancelled; a SEND is let finish, unless the connection failed.
   */
  #closeWhenIdle(client: Client): void {
    if (client.closeQueued || client.gone) return;
    // A file operation's descriptor or buffer is the kernel's until it completes (cancelled in
    // abandon when it waits on the socket; a disk read just finishes).
    if (client.file.inFlight || (!client.failed && (!client.outbox.empty || client.outbox.pending > 0 || client.sending.inFlight > 0))) return;
    if (client.receiving) {
      if (!client.cancellingRecv) {
        client.cancellingRecv = true;
        this.#ring.cancel(client.id, OP.RECV);
      }
      return;
    }
    if (client.sending.inFlight > 0) return; // a failed connection's SEND: cancelled in abandon
    if (!client.failed) this.libc.shutdown(client.fd, this.libc.SHUT_WR);
    client.closeQueued = true;
    this.#ring.queue({ op: OP.CLOSE, fd: client.fd, id: client.id });
  }

  /** The CLOSE completed: the connection is gone, and its buffers are ours for good. */
  #closed(client: Client): void {
    this.#awaitingBuffers.delete(client);
    client.sending.release();
    client.file.release();
    if (client.recvBlock) this.#pool.give(client.recvBlock);
    client.recvBlock = undefined;
    this.forget(client);
  }
}
