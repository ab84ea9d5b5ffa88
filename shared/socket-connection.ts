/**
 * Serves one `net.Socket` with the connection contract (conversation.ts): the carrier that labs 02,
 * 03, 04 and 06 share, so that their server files hold only what differs (who accepts, where the
 * work runs, where the room lives). The labs that make their own system calls carry the same
 * actions out with the by-hand kit (shared/kit/), under the same rules, whose own code (limits,
 * close reasons, the log lines) is in rules.ts.
 *
 * Rules, in the order a byte meets them:
 *   1. Bytes read go to the conversation, which hands back actions.
 *   2. Each job goes to `handle`, which answers at once (inline work) or later (a worker thread);
 *      bytes to send and file ranges (streamed by shared/file-stream.ts) queue behind them.
 *      Replies are written strictly in order, whatever order they finish in.
 *   3. Backpressure: the socket stops reading while its write buffer is over Node's high-water
 *      mark, while it has too many jobs in flight, while a shared `Gate` is closed (the pool's
 *      queue is full), or while the conversation holds it (a relayed room's flow control). It resumes when the cause clears, so nothing is dropped and nothing queues
 *      without bound.
 *   4. Bounds: idle timeout (no byte moving either way, which also catches a client that stopped
 *      reading), total lifetime, http header timeout (a whole request, head and body), and a cap on unsent reply bytes.
 *   5. Close: after the peer's FIN every pending reply is still written, then our FIN follows.
 */

import type { Socket } from 'node:net';
import type { Carrier, FileJob, Job, ProtocolConfig } from './conversation.js';
import { LAST_WORDS_MS } from './conversation.js';
import { sendFileOnSocket } from './file-stream.js';
import type { ConnectionLimits } from './lab.js';
import type { Logger } from './log.js';
import { openConversation } from './protocols.js';
import type { RoomPort } from './room.js';
import { CLOSED, ConnectionRecord, overPending } from './rules.js';

/** A reply now, or one that a worker will produce. */
export type Reply = Uint8Array | Promise<Uint8Array>;

/**
 * Jobs one connection may have in flight before it stops reading. Enough for a pipelining client
 * to keep several workers busy; few enough that the reorder queue stays small.
 */
const MAX_JOBS_IN_FLIGHT = 16;

/** A shared on/off switch for reading: closed while a shared resource (a pool queue) is full. */
export class Gate {
  #closed = false;
  readonly #waiters = new Set<() => void>();

  get closed(): boolean {
    return this.#closed;
  }
  close(): void {
    this.#closed = true;
  }
  open(): void {
    if (!this.#closed) return;
    this.#closed = false;
    for (const resume of this.#waiters) resume();
  }
  subscribe(resume: () => void): () => void {
    this.#waiters.add(resume);
    return () => this.#waiters.delete(resume);
  }
}

export interface ServeOptions {
  readonly protocol: ProtocolConfig;
  readonly limits: ConnectionLimits;
  /** TCP_NODELAY on the socket (see ServerOptions.noDelay). */
  readonly noDelay: boolean;
  readonly log: Logger;
  readonly handle: (job: Job) => Reply;
  readonly gate?: Gate;
  /** The room this lab keeps (shared/room.ts), here or relayed: where it lives is the lab's model. */
  readonly room: RoomPort;
}

export interface Connection {
  readonly peer: string;
  /** Shutdown: finish what is in progress, take nothing new. */
  stop(): void;
  /** Shutdown deadline passed: close now. */
  destroy(): void;
  /** Resolves when the socket is closed. */
  readonly closed: Promise<void>;
}

/** A served socket: a Connection, and whether its client speaks first, request by request (Conversation.waitsForRequests). */
export interface SocketConnection extends Connection {
  readonly waitsForRequests: boolean;
}

export function serveSocket(socket: Socket, options: ServeOptions): SocketConnection {
  const { limits, log, handle, gate } = options;
  const record = new ConnectionRecord(log, `${socket.remoteAddress}:${socket.remotePort}`);
  let inFlight = 0;
  let ordered: Promise<void> = Promise.resolve();
  let closeWhenFlushed = false;
  let headerTimer: NodeJS.Timeout | undefined;
  /** The request the header timer runs for (Conversation.requestArriving), 0 for none. */
  let timedRequest = 0;
  /** The conversation asked that the client be read no more for now (Carrier.holdReading). */
  let readingHeld = false;
  let lastWords: NodeJS.Timeout | undefined;

  const carrier: Carrier = {
    send: (bytes) => submit(bytes),
    answer: (job: Job) => submit(handle(job)),
    sendFile: (job) => submitFile(job),
    close(reason) {
      if (reason !== undefined && record.fail(reason)) lastWords = setTimeout(() => socket.destroy(), LAST_WORDS_MS);
      closeAfterReplies();
    },
    holdReading(held) {
      readingHeld = held;
      updateFlow();
    },
    get pending() {
      return socket.writableLength;
    },
  };
  const conversation = openConversation(carrier, { protocol: options.protocol, room: options.room, maxPendingBytes: limits.maxPendingBytes, log, peer: record.peer });

  // Echo round trips are small writes answered by small writes: Nagle's algorithm would hold each
  // one back waiting for the peer's delayed ACK, adding tens of milliseconds per round trip.
  socket.setNoDelay(options.noDelay);
  socket.setTimeout(limits.idleTimeoutMs, () => fail(CLOSED.idle));
  const lifetime = setTimeout(() => fail(CLOSED.lifetime), limits.maxLifetimeMs);
  const unsubscribe = gate?.subscribe(() => updateFlow());

  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      clearTimeout(lifetime);
      clearTimeout(headerTimer);
      clearTimeout(lastWords);
      unsubscribe?.();
      conversation.release();
      record.disconnected(socket.bytesRead, socket.bytesWritten);
      resolve();
    });
  });

  socket.on('data', (chunk: Buffer) => {
    conversation.receive(chunk);
    watchHeader();
    updateFlow();
  });
  socket.on('end', () => conversation.end());
  socket.on('drain', () => updateFlow());
  socket.on('error', (error: NodeJS.ErrnoException) => {
    record.fail(error.code ?? error.message);
  });

  /** Rule 2: a reply now, or one a worker will produce; either way after every reply before it. */
  function submit(reply: Reply): void {
    if (!(reply instanceof Promise) && inFlight === 0) {
      write(reply);
      return;
    }
    // Some reply is still being computed elsewhere: queue behind it to keep the order.
    inFlight++;
    const settled = Promise.resolve(reply);
    ordered = ordered
      .then(() => settled)
      .then(write, (error: unknown) => fail(`work failed: ${error instanceof Error ? error.message : String(error)}`))
      .finally(replyDone);
  }

  /** A file range, streamed in order behind every earlier reply (shared/file-stream.ts). */
  function submitFile(job: FileJob): void {
    inFlight++;
    ordered = ordered
      .then(() => (socket.destroyed ? undefined : sendFileOnSocket(socket, job, options.protocol.root!, record.peer, log)))
      .then(
        (failure) => {
          if (failure) fail(failure);
        },
        (error: unknown) => fail(`file send failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(replyDone);
  }

  /** A queued reply is out (or failed): the next may go, and the socket may close or read again. */
  function replyDone(): void {
    inFlight--;
    if (closeWhenFlushed && inFlight === 0) finishSocket();
    updateFlow();
  }

  function write(bytes: Uint8Array): void {
    if (socket.destroyed) return;
    socket.write(bytes);
    const over = overPending(limits, socket.writableLength);
    if (over) fail(over);
  }

  function closeAfterReplies(): void {
    if (closeWhenFlushed) return;
    closeWhenFlushed = true;
    record.closeAfterReplies(socket.readableEnded);
    if (inFlight === 0) finishSocket();
  }

  /**
   * Our FIN goes out behind everything already written. If the client has not sent its FIN yet
   * (the server chose to close: an http error or `Connection: close`), do not wait for one:
   * close fully once the replies are flushed, as Node's own http server does.
   */
  function finishSocket(): void {
    if (socket.readableEnded) socket.end();
    else socket.destroySoon();
  }

  /** The header timeout runs from each request's first byte to its last (head and body). */
  function watchHeader(): void {
    const arriving = conversation.requestArriving;
    if (arriving === timedRequest) return;
    clearTimeout(headerTimer);
    headerTimer = arriving === 0 ? undefined : setTimeout(() => fail(CLOSED.header), limits.headerTimeoutMs);
    timedRequest = arriving;
  }

  function updateFlow(): void {
    if (socket.destroyed || closeWhenFlushed) return;
    const blocked = socket.writableNeedDrain || inFlight >= MAX_JOBS_IN_FLIGHT || gate?.closed === true || readingHeld;
    if (blocked && !socket.isPaused()) socket.pause();
    else if (!blocked && socket.isPaused()) socket.resume();
  }

  function fail(why: string): void {
    if (socket.destroyed) return;
    record.fail(why);
    socket.destroy();
  }

  conversation.start();
  return {
    peer: record.peer,
    closed,
    waitsForRequests: conversation.waitsForRequests,
    stop: () => conversation.stop(),
    destroy: () => fail(CLOSED.shutdown),
  };
}
