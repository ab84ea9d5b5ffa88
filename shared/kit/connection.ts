/**
 * The connection record of the labs that make their own system calls (01, 05, 07, and 08 next):
 * one client's descriptor, its conversation (shared/conversation.ts), its outgoing queue, the
 * times its limits run from, and its story for the log. It is the conversation's carrier, so a
 * lab never sees a protocol: it reads bytes into `took`, tells `peerEnd`, and moves the outbox
 * its own way when `Mechanism.transmit` asks.
 *
 * The rules, as shared/socket-connection.ts applies them to a net.Socket:
 *   1. Bytes read go to the conversation; a reply is worked out inline (`respond`), here.
 *   2. Replies, room lines and file ranges queue in order in the outbox; the lab sends what the
 *      kernel takes at once, and what is left over --max-pending ends the connection.
 *   3. `closeAfterReplies`: read no more, close once the outbox is empty (the lab's part:
 *      `Mechanism.closeWhenSent`). `fail`: close now, whatever is queued (`Mechanism.abandon`).
 *   4. The time limits are checked by the server's sweep (kit/server.ts), from `times`.
 */

import { type Carrier, type Conversation, type FileJob, type Job, LAST_WORDS_MS } from '../conversation.js';
import { answerFile } from '../file-open.js';
import type { CopyMode } from '../file-send.js';
import type { ServerOptions } from '../lab.js';
import { respond } from '../protocol.js';
import { openConversation } from '../protocols.js';
import type { RoomPort } from '../room.js';
import { ConnectionRecord, overPending, type ConnectionTimes } from '../rules.js';
import { type FlushIO, Outbox } from './outbox.js';

type Libc = typeof import('../libc.js');

/**
 * The most one read (a read(2), a RECV) takes: the size Node's own sockets read with, so every
 * lab hands its conversations chunks of the same size.
 */
export const READ_BYTES = 64 * 1024;

/**
 * Queued reply bytes over which a client is no longer read until they drain: one read's worth.
 * Its bytes then wait in the kernel, whose receive window slows the sender down. Node's sockets
 * pause from 16 KiB; one read's worth keeps the reply to one full read that the kernel did not
 * take at once from pausing the client.
 */
export const PAUSE_READING_BYTES = READ_BYTES;

/** What a lab's mechanism does for its connections: the part that differs between by-hand labs. */
export interface Mechanism {
  readonly libc: Libc;
  readonly options: ServerOptions & { readonly copy?: CopyMode };
  readonly room: RoomPort;
  /** Bytes or a file joined `connection`'s outbox: send what the kernel takes now, or arrange to. */
  transmit(connection: HandConnection): void;
  /** `connection` is closing: close it once its outbox is sent (it may be already). */
  closeWhenSent(connection: HandConnection): void;
  /** `connection` failed (its outbox is dropped): stop what is in flight on it and close it now. */
  abandon(connection: HandConnection): void;
  /**
   * `connection` may be read again after its conversation held it (a chat member of a relayed
   * room, shared/room.ts). Only a lab whose room lives elsewhere needs it: a LocalRoom never holds.
   */
  readable?(connection: HandConnection): void;
}

/** What the server hands a new connection. */
export interface Admission {
  readonly mechanism: Mechanism;
  readonly id: number;
  readonly fd: number;
  readonly peer: string;
  readonly now: number;
}

export class HandConnection implements Carrier {
  /** The server's name for it: the poller's registration id, the ring's user_data. */
  readonly id: number;
  readonly fd: number;
  /** Its connect and disconnect lines and the reason it closed (shared/rules.ts). */
  readonly record: ConnectionRecord;
  /** Opened, last byte moved, request head begun, close-by: what the time limits are measured from. */
  readonly times: ConnectionTimes;
  readonly outbox = new Outbox();
  readonly conversation: Conversation;
  received = 0;
  sent = 0;
  /** Read no more: after the peer's FIN, or when the conversation or a shutdown ends the connection. */
  closing = false;
  peerEnded = false;
  /** Ended early by a limit, an error or the shutdown deadline: no shutdown(), just close. */
  failed = false;
  /** Closed for good and out of the table (kit/server.ts `forget`). */
  gone = false;
  readonly #mechanism: Mechanism;
  #io: FlushIO | undefined;
  /**
   * Bytes (and, as null, the FIN) that arrived while the client was not to be read, in order:
   * a completion model learns of bytes it asked for before the client paused (lab 07's multishot
   * RECV keeps completing until its cancel lands). Handed on by `resume`; copies, so the lab's
   * buffers go back at once. A readiness lab reads only when `reading`, and never holds any.
   */
  readonly #held: (Buffer | null)[] = [];
  #readingHeld = false;

  constructor({ mechanism, id, fd, peer, now }: Admission) {
    this.#mechanism = mechanism;
    this.id = id;
    this.fd = fd;
    const { options } = mechanism;
    this.record = new ConnectionRecord(options.log, peer);
    this.times = { openedAt: this.record.openedAt, lastMovedAt: now, requestStartedAt: -1, timedRequest: 0, closeBy: -1 };
    const context = { protocol: options.protocol, room: mechanism.room, maxPendingBytes: options.limits.maxPendingBytes, log: options.log, peer };
    this.conversation = openConversation(this, context);
  }

  // --- The carrier: what the conversation asks for ---------------------------------------------

  send(bytes: Uint8Array, shared = false): void {
    if (this.failed || this.gone || bytes.length === 0) return;
    this.outbox.push(bytes, shared);
    this.#mechanism.transmit(this);
    this.outbox.keep();
    const over = overPending(this.#mechanism.options.limits, this.outbox.pending);
    if (over) this.fail(over);
  }

  /** The work runs inline, on the loop's one thread: this model's way. */
  answer(job: Job): void {
    if (this.failed || this.gone) return;
    this.send(respond(job, this.#mechanism.options.work));
  }

  sendFile(job: FileJob): void {
    if (this.failed || this.gone) return;
    this.outbox.pushFile(job);
    this.#mechanism.transmit(this);
  }

  close(reason?: string): void {
    if (reason !== undefined && this.record.fail(reason)) this.times.closeBy = performance.now() + LAST_WORDS_MS;
    this.closeAfterReplies();
  }

  get pending(): number {
    return this.outbox.pending;
  }

  /**
   * The conversation asked that the client be read no more for now (a relayed room's flow
   * control). Released, the mechanism is asked to read again (`readable`).
   */
  holdReading(held: boolean): void {
    this.#readingHeld = held;
    if (held) return;
    this.resume(performance.now());
    this.#mechanism.readable?.(this);
  }

  /** Backpressure: read while not closing, not held, and not over PAUSE_READING_BYTES queued nor holding a file to send. */
  get reading(): boolean {
    return !this.closing && !this.failed && !this.#readingHeld && this.outbox.pending <= PAUSE_READING_BYTES && this.outbox.files === 0;
  }

  // --- What the lab tells it ----------------------------------------------------------------------

  /** Bytes read from the client (a view of the lab's buffer is fine: what waits is copied). */
  took(bytes: Buffer, now: number): void {
    if (this.closing || this.failed) return;
    if (this.#held.length > 0 || !this.reading) {
      this.#held.push(Buffer.from(bytes));
      return;
    }
    this.#hand(bytes, now);
  }

  #hand(bytes: Buffer, now: number): void {
    this.received += bytes.length;
    this.times.lastMovedAt = now;
    this.conversation.receive(bytes);
    // The header timeout runs from each request's first byte to its last (head and body).
    const arriving = this.conversation.requestArriving;
    if (arriving !== this.times.timedRequest) {
      this.times.timedRequest = arriving;
      this.times.requestStartedAt = arriving === 0 ? -1 : now;
    }
  }

  /**
   * One read(2) of its descriptor into `buffer`, handed on: the bytes to the conversation, the
   * FIN, or the failure. True when bytes came (more may follow); false at EAGAIN (drained; lab
   * 08's blocking read: its receive timeout passed), the FIN or a failure. `notFin`: a read of 0
   * bytes is not the client's FIN but the server's own shutdown(2) waking a thread asleep in
   * read() (lab 08), which the caller handles.
   */
  readSome(buffer: Buffer, now: number, notFin?: () => boolean, arrived?: () => void): boolean {
    const libc = this.#mechanism.libc;
    for (;;) {
      const n = libc.read(this.fd, buffer, buffer.length);
      if (n > 0) {
        // A blocking lab slept in read(): what changed meanwhile (a shutdown began) comes first.
        arrived?.();
        if (this.failed) return false;
        this.took(buffer.subarray(0, n), now);
        return true;
      }
      if (n === 0) {
        if (!notFin?.()) this.peerEnd();
        return false;
      }
      const error = libc.errno();
      if (error === libc.EINTR) continue;
      if (error !== libc.EAGAIN) this.fail(libc.errnoName(error));
      return false;
    }
  }

  /** The client's FIN: everything it sent is read; the replies still go out. */
  peerEnd(): void {
    if (this.closing || this.failed) return;
    if (this.#held.length > 0) {
      this.#held.push(null);
      return;
    }
    this.peerEnded = true;
    this.conversation.end();
  }

  /** The client may be read again: what arrived meanwhile is handed on, until it pauses again. */
  resume(now: number): void {
    while (this.#held.length > 0 && this.reading) {
      const bytes = this.#held.shift()!;
      if (bytes) this.#hand(bytes, now);
      else this.peerEnd();
    }
  }

  /** `bytes` went to the kernel. */
  wrote(bytes: number, now = performance.now()): void {
    this.sent += bytes;
    this.times.lastMovedAt = now;
  }

  /**
   * Writes the outbox onto its descriptor as far as the kernel takes it: at once on a non-blocking
   * one (labs 01 and 05); on a blocking one (lab 08) sleeping in each write until it is taken or
   * the socket's send timeout passes, unless `sendFlags` has MSG_DONTWAIT (outbox.ts FlushIO).
   */
  flush(sendFlags = 0): void {
    this.#io ??= {
      libc: this.#mechanism.libc,
      copy: this.#mechanism.options.copy ?? 'sendfile',
      open: (job) => answerFile(job, this.#mechanism.options.protocol.root!, this.record.peer, this.#mechanism.options.log),
      sent: (bytes) => this.wrote(bytes),
    };
    this.#io.sendFlags = sendFlags;
    const failure = this.outbox.flushTo(this.fd, this.#io);
    if (failure !== undefined) this.fail(failure);
  }

  closeAfterReplies(): void {
    if (this.gone) return;
    if (!this.closing) {
      this.closing = true;
      this.record.closeAfterReplies(this.peerEnded);
    }
    this.#mechanism.closeWhenSent(this);
  }

  /** Ends the connection now, with `reason` in its disconnect line. */
  fail(reason: string): void {
    if (this.failed || this.gone) return;
    this.failed = true;
    this.record.fail(reason);
    // Out of the room now, not when the descriptor is closed: nothing more is queued for it.
    this.conversation.release();
    this.outbox.drop();
    this.#held.length = 0;
    this.#mechanism.abandon(this);
  }
}
