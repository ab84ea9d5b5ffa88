/**
 * Serves one client on a raw, non-blocking descriptor: lab 01's counterpart of
 * `shared/socket-connection.ts`, rule for rule, with the rules' own code (limits, close reasons,
 * the connect and disconnect lines) shared from `shared/rules.ts`. Only the mechanism differs:
 * here every byte moves through read() and write() on the one JavaScript thread.
 *
 * Rules, in the order a byte meets them (numbered as in socket-connection.ts):
 *   1. Bytes read go to the session, which frames them into jobs.
 *   2. Each job is answered inline (`respond`), and its reply is written completely before the
 *      next read, so replies go out in job order. files: a reply that is a file range is sent by
 *      sendfile() (or pread() and write(), `--copy read-write`), polling for room at each EAGAIN.
 *   3. Backpressure: when the kernel's send buffer is full, write() says EAGAIN and we poll() for
 *      room before reading again. A client that sends faster than it reads is slowed to its own
 *      reading speed: backpressure comes free with this model.
 *   4. Bounds: idle timeout (no byte moving either way, which also catches a client that stopped
 *      reading), total lifetime, http header timeout, and a cap on unsent reply bytes. They are
 *      checked each time a wait ends, so each may fire up to POLL_MS late (a simplification: a
 *      timer per limit would need the event loop, which we visit only between waits anyway).
 *   5. Close: at the client's FIN every reply is already written; shutdown(SHUT_WR) sends our FIN.
 */

import { ChatSession, CUT_OFF_NOTICE, cutOffLine, NO_SESSION, OutputLimit, queueLimits, SHUTDOWN_NOTICE, type ChatStep } from '../../shared/chat.js';
import type { ConnectionLimits } from '../../shared/lab.js';
import type { Logger } from '../../shared/log.js';
import { createSession, respond, type ProtocolConfig, type Session, type Step } from '../../shared/protocol.js';
import { CLOSED, ConnectionRecord, limitReached, overPending, type ConnectionTimes } from '../../shared/rules.js';
import type { Connection } from '../../shared/socket-connection.js';
import type { MemberId, RoomPort } from '../../shared/room.js';
import type { EventLoopTurns } from '../../shared/turn.js';
import type { WorkSpec } from '../../shared/work.js';
import { answerFile, closeBody } from '../../shared/file-open.js';
import { type CopyMode, FileTransfer } from '../../shared/file-send.js';

type Libc = typeof import('../../shared/libc.js');

/** What serving a descriptor needs, owned by the server and lent to each client in turn. */
export interface DescriptorServing {
  readonly libc: Libc;
  readonly turns: EventLoopTurns;
  /** One buffer for every read: each reply is written before the next read overwrites it. */
  readonly readBuffer: Buffer;
  readonly protocol: ProtocolConfig;
  readonly limits: ConnectionLimits;
  /** TCP_NODELAY on each client (see ServerOptions.noDelay). */
  readonly noDelay: boolean;
  readonly work: WorkSpec;
  readonly log: Logger;
  /** chat: the room, which in this model never has more than the one client being served. */
  readonly room: RoomPort;
  /** files: sendfile(2), or pread(2) and write(2) (`--copy`, shared/file-send.ts). */
  readonly copy: CopyMode;
}

/** The int 1 that setsockopt() reads to switch an option on. */
const ON = new Int32Array([1]);

/** Serves the client on `fd` until it or a limit closes the connection; `closed` resolves then. */
export function serveDescriptor(fd: number, peer: string, serving: DescriptorServing): Connection {
  return new DescriptorConnection(fd, peer, serving);
}

class DescriptorConnection implements Connection {
  readonly closed: Promise<void>;
  readonly #fd: number;
  readonly #serving: DescriptorServing;
  readonly #record: ConnectionRecord;
  readonly #session: Session;
  /** For the limits, updated in place: the hot loop allocates only what the protocol core does. */
  readonly #times: ConnectionTimes;
  #received = 0;
  #sent = 0;
  /** Read no more: after the client's FIN, or when the protocol or a shutdown ends the connection. */
  #closing = false;
  #peerEnded = false;
  /** Ended early by a limit, an error or the shutdown deadline: no shutdown(), just close(). */
  #failed = false;
  /** The shutdown deadline passed (or a second Ctrl-C): fail at the next wake-up. */
  #forced = false;
  /**
   * chat: the line framer (instead of #session), the member's id, and what the room has handed it
   * since the last write. Written out, as replies are, before the next read.
   */
  readonly #chat: { readonly session: ChatSession; readonly limit: OutputLimit; member: MemberId; left: boolean } | undefined;
  readonly #outbox: Buffer[] = [];
  #outboxBytes = 0;

  constructor(fd: number, peer: string, serving: DescriptorServing) {
    this.#fd = fd;
    this.#serving = serving;
    const chatting = serving.protocol.protocol === 'chat';
    this.#session = chatting ? NO_SESSION : createSession(serving.protocol);
    this.#record = new ConnectionRecord(serving.log, peer);
    this.#times = { openedAt: this.#record.openedAt, lastMovedAt: this.#record.openedAt, headStartedAt: -1 };
    // Echo round trips are small writes answered by small writes: without TCP_NODELAY, Nagle's
    // algorithm could hold a reply back until the client's delayed ACK (as every lab sets it).
    if (serving.noDelay) serving.libc.setsockopt(fd, serving.libc.IPPROTO_TCP, serving.libc.TCP_NODELAY, ON, 4);
    this.#chat = chatting ? { session: new ChatSession(), limit: new OutputLimit(queueLimits(serving.limits.maxPendingBytes)), member: 0, left: false } : undefined;
    // The welcome is delivered during the join, so #chat must exist first.
    if (this.#chat) {
      this.#chat.member = serving.room.join({ deliver: (bytes) => this.#deliver(bytes) });
      if (this.#chat.left) serving.room.leave(this.#chat.member);
    }
    this.closed = this.#serve();
  }

  get peer(): string {
    return this.#record.peer;
  }

  /** Shutdown: finish the current request (http), take nothing new. */
  stop(): void {
    if (this.#chat) return this.#chatStop();
    if (this.#session.stopAfterCurrent()) this.#closeAfterReplies();
  }

  /** Shutdown deadline passed: the loop closes the connection when it next wakes. */
  destroy(): void {
    this.#forced = true;
  }

  async #serve(): Promise<void> {
    const { libc, turns, readBuffer } = this.#serving;
    const fd = this.#fd;
    // chat: the welcome goes out before the first wait.
    if (this.#chat) await this.#writeOutbox(performance.now());
    while (!this.#failed && !this.#closing) {
      // Stands in for a C server's blocking read(): poll() until readable, then read().
      const ready = turns.poll(fd, libc.POLLIN);
      const now = performance.now();
      if (!ready || turns.due(now)) await turns.take();
      // A turn may have run close(), which can end this client (a limit, or http between requests).
      if (this.#overLimit(now) || this.#closing || !ready) continue;

      const n = libc.read(fd, readBuffer, readBuffer.length);
      if (n > 0) {
        this.#received += n;
        this.#times.lastMovedAt = now;
        if (this.#chat) {
          this.#chatStep(this.#chat.session.receive(readBuffer.subarray(0, n)));
          await this.#writeOutbox(now);
          continue;
        }
        const answering = this.#answer(this.#session.receive(readBuffer.subarray(0, n)), now);
        if (answering) await answering;
      } else if (n === 0) {
        this.#peerEnded = true;
        if (this.#chat) this.#chatLeave(undefined, true);
        else await this.#answer(this.#session.end(), now);
        this.#closeAfterReplies();
      } else {
        const error = libc.errno();
        // EAGAIN: poll() said readable but the bytes were gone (rare, harmless): wait again.
        if (error !== libc.EAGAIN && error !== libc.EINTR) this.#fail(libc.errnoName(error));
      }
    }

    // Rule 5. Every reply is written by now: our FIN follows them. If the server chose to close
    // (http: an error or `Connection: close`), we do not wait for the client's FIN either, just
    // as the other labs (and Node's http server) do: close() right after the FIN.
    // chat: a goodbye or an error line may be waiting (shutdown, the line limit).
    if (this.#chat && !this.#failed) await this.#writeOutbox(performance.now());
    if (this.#chat) this.#chatLeave(undefined, true);
    if (!this.#failed) libc.shutdown(fd, libc.SHUT_WR);
    libc.close(fd);
    this.#session.close();
    this.#record.disconnected(this.#received, this.#sent);
  }

  /**
   * Rules 2 and 3: answer each job inline and write its reply completely, in order. Returns
   * undefined when every reply went out at once (the usual case, kept free of promises), or a
   * promise when the send buffer filled up and the rest has to wait for room.
   */
  #answer(step: Step, now: number): Promise<void> | undefined {
    const jobs = step.jobs;
    for (let i = 0; i < jobs.length; i++) {
      if (jobs[i]!.kind === 'file') return this.#answerFile(step, i);
      const reply = respond(jobs[i]!, this.#serving.work);
      // In this model the unsent bytes are never more than the reply in hand, because nothing is
      // read while a reply is unsent; the cap matters only if set below one reply's size.
      const over = overPending(this.#serving.limits, reply.length);
      if (over) {
        this.#fail(over);
        return undefined;
      }
      const written = this.#writeSome(reply, 0, now);
      if (written < 0) return undefined;
      if (written < reply.length) return this.#answerLater(step, i, reply, written);
    }
    if (step.close) this.#closeAfterReplies();
    this.#watchHeader(now);
    return undefined;
  }

  /** The slow path of #answer: reply `index` is written up to `offset`, then come the rest. */
  async #answerLater(step: Step, index: number, reply: Uint8Array, offset: number): Promise<void> {
    if (!(await this.#writeRest(reply, offset))) return;
    await this.#answer({ jobs: step.jobs.slice(index + 1), close: step.close }, performance.now());
  }

  /**
   * files: job `index` is a file. Its head is written as any reply, then its range by `--copy`
   * (sendfile, or pread and write), polling for room whenever the kernel says EAGAIN; then the
   * rest of the jobs. Nothing is read meanwhile, as for any reply in this model.
   */
  async #answerFile(step: Step, index: number): Promise<void> {
    const { libc, protocol, log, copy } = this.#serving;
    const job = step.jobs[index]!;
    if (job.kind !== 'file') throw new Error('not a file job');
    const { head, body } = answerFile(job, protocol.root!, this.#record.peer, log);
    try {
      const written = this.#writeSome(head, 0, performance.now());
      if (written < 0 || (written < head.length && !(await this.#writeRest(head, written)))) return;
      if (body) {
        const transfer = new FileTransfer(libc, copy, body);
        for (;;) {
          const state = transfer.send(this.#fd, (bytes) => {
            this.#sent += bytes;
            this.#times.lastMovedAt = performance.now();
          });
          if (state.done) break;
          if (state.failure !== undefined) {
            this.#fail(state.failure);
            return;
          }
          if (!(await this.#waitWritable())) return;
        }
      }
    } finally {
      if (body) closeBody(body);
    }
    await this.#answer({ jobs: step.jobs.slice(index + 1), close: step.close }, performance.now());
  }

  /** Polls until the send buffer has room; false if a limit or the shutdown ended the client meanwhile. */
  async #waitWritable(): Promise<boolean> {
    const { libc, turns } = this.#serving;
    for (;;) {
      const ready = turns.poll(this.#fd, libc.POLLOUT);
      const now = performance.now();
      if (!ready || turns.due(now)) await turns.take();
      if (this.#overLimit(now)) return false;
      if (ready) return true;
    }
  }

  /** write() until done or the send buffer is full; returns the new offset (failed: -1). */
  #writeSome(reply: Uint8Array, offset: number, now: number): number {
    const libc = this.#serving.libc;
    while (offset < reply.length) {
      const chunk = offset === 0 ? reply : reply.subarray(offset);
      const n = libc.write(this.#fd, chunk, chunk.length);
      if (n >= 0) {
        offset += n;
        this.#sent += n;
        this.#times.lastMovedAt = now;
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) return offset;
      if (error === libc.EINTR) continue;
      // EPIPE or ECONNRESET: the client is gone. Node ignores SIGPIPE, so this is an errno, not death.
      this.#fail(libc.errnoName(error));
      return -1;
    }
    return offset;
  }

  /** Rule 3: the send buffer is full; poll for room until the reply is out. False if it failed. */
  async #writeRest(reply: Uint8Array, offset: number): Promise<boolean> {
    for (;;) {
      // The idle timeout covers this wait too: a client that stops reading stops bytes moving.
      if (!(await this.#waitWritable())) return false;
      offset = this.#writeSome(reply, offset, performance.now());
      if (offset < 0) return false;
      if (offset === reply.length) return true;
    }
  }

  // --- chat: the room's bytes, written as replies are -------------------------------------------

  #chatStep(step: ChatStep): void {
    const chat = this.#chat!;
    const actions = step.close ? step.actions.slice(0, -1) : step.actions;
    for (const action of actions) this.#serving.room.act(chat.member, action);
    if (!step.close) return;
    const error = step.actions.at(-1);
    if (error?.kind === 'reply') this.#queue(Buffer.from(error.text, 'latin1'));
    this.#chatLeave(step.why, true);
    this.#closeAfterReplies();
  }

  /**
   * The room hands this member bytes. In this model they are only ever its own replies (it is
   * alone in the room), written before the next read; the bound still holds for a client that
   * asks for more than it reads.
   */
  #deliver(bytes: Buffer): void {
    const chat = this.#chat!;
    if (chat.left || this.#failed) return;
    const slow = chat.limit.check(this.#outboxBytes, bytes.length, performance.now());
    if (!slow) return this.#queue(bytes);
    this.#record.fail(slow);
    this.#serving.log.warn(cutOffLine(this.#record.peer, slow));
    this.#chatLeave('too slow', true);
    this.#queue(Buffer.from(CUT_OFF_NOTICE, 'latin1'));
    this.#closeAfterReplies();
  }

  #queue(bytes: Buffer): void {
    this.#outbox.push(bytes);
    this.#outboxBytes += bytes.length;
  }

  /** Writes what the room handed this member, in order; false if the connection failed. */
  async #writeOutbox(now: number): Promise<boolean> {
    while (this.#outbox.length > 0) {
      const bytes = this.#outbox.shift()!;
      this.#outboxBytes -= bytes.length;
      const written = this.#writeSome(bytes, 0, now);
      if (written < 0) return false;
      if (written < bytes.length && !(await this.#writeRest(bytes, written))) return false;
    }
    return true;
  }

  #chatLeave(why: string | undefined, announce: boolean): void {
    const chat = this.#chat!;
    if (chat.left) return;
    chat.left = true;
    // 0: still joining (room ids count from 1); the constructor makes it leave once the join returns.
    if (chat.member !== 0) this.#serving.room.leave(chat.member, why, announce);
  }

  /** Shutdown: goodbye, written after whatever is queued, and the connection closes. */
  #chatStop(): void {
    if (this.#chat!.left) return;
    this.#chatLeave(undefined, false);
    this.#queue(Buffer.from(SHUTDOWN_NOTICE, 'latin1'));
    this.#closeAfterReplies();
  }

  #closeAfterReplies(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#record.closeAfterReplies(this.#peerEnded);
  }

  /** http: time the request head from its first byte; an echo session never has one pending. */
  #watchHeader(now: number): void {
    if (!this.#session.headPending) this.#times.headStartedAt = -1;
    else if (this.#times.headStartedAt < 0) this.#times.headStartedAt = now;
  }

  /** Rule 4, checked each time a wait ends. True if the client has just been failed (or was). */
  #overLimit(now: number): boolean {
    if (this.#failed) return true;
    if (this.#forced) return this.#fail(CLOSED.shutdown);
    const reached = limitReached(this.#serving.limits, this.#times, now);
    return reached !== undefined && this.#fail(reached);
  }

  #fail(reason: string): true {
    this.#record.fail(reason);
    this.#failed = true;
    return true;
  }
}
