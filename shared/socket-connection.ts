/**
 * Serves one `net.Socket` with the protocol core: the connection handling that labs 02, 03 and 04
 * share, so that their server files hold only what differs (who accepts, where the work runs).
 * Lab 01 cannot use it: it does its own system calls (labs/01-serial/connection.ts), and mirrors
 * these same rules one by one. The rules' own code (limits, close reasons, the log lines) is
 * shared by both, in rules.ts.
 *
 * Rules, in the order a byte meets them:
 *   1. Bytes read go to the session, which frames them into jobs.
 *   2. Each job goes to `handle`, which answers at once (inline work) or later (a worker thread).
 *      Replies are written strictly in job order, whatever order they finish in.
 *   3. Backpressure: the socket stops reading while its write buffer is over Node's high-water
 *      mark, while it has too many jobs in flight, or while a shared `Gate` is closed (the pool's
 *      queue is full). It resumes when the cause clears, so nothing is dropped and nothing queues
 *      without bound.
 *   4. Bounds: idle timeout (no byte moving either way, which also catches a client that stopped
 *      reading), total lifetime, http header timeout, and a cap on unsent reply bytes.
 *   5. Close: after the peer's FIN every pending reply is still written, then our FIN follows.
 */

import type { Socket } from 'node:net';
import type { ConnectionLimits } from './lab.js';
import type { Logger } from './log.js';
import { createSession, type Job, type ProtocolConfig } from './protocol.js';
import type { FileJob } from './files.js';
import { sendFileOnSocket } from './file-stream.js';
import { CLOSED, ConnectionRecord, overPending } from './rules.js';
import type { RoomPort } from './room.js';
import { serveChatSocket } from './chat-socket.js';

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
  /** chat: the room this lab keeps (shared/room.ts); the connection is then served by chat-socket.ts. */
  readonly room?: RoomPort;
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

export function serveSocket(socket: Socket, options: ServeOptions): Connection {
  if (options.protocol.protocol === 'chat') {
    if (!options.room) throw new Error('a chat connection needs a room: a bug in the lab');
    return serveChatSocket(socket, { ...options, room: options.room });
  }
  const { limits, log, handle, gate } = options;
  const session = createSession(options.protocol);
  const record = new ConnectionRecord(log, `${socket.remoteAddress}:${socket.remotePort}`);
  let inFlight = 0;
  let ordered: Promise<void> = Promise.resolve();
  let closeWhenFlushed = false;
  let headerTimer: NodeJS.Timeout | undefined;

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
      unsubscribe?.();
      session.close();
      record.disconnected(socket.bytesRead, socket.bytesWritten);
      resolve();
    });
  });

  socket.on('data', (chunk: Buffer) => {
    const step = session.receive(chunk);
    for (const job of step.jobs) submit(job);
    if (step.close) closeAfterReplies();
    watchHeader();
    updateFlow();
  });
  socket.on('end', () => {
    const step = session.end();
    for (const job of step.jobs) submit(job);
    closeAfterReplies();
  });
  socket.on('drain', () => updateFlow());
  socket.on('error', (error: NodeJS.ErrnoException) => {
    record.fail(error.code ?? error.message);
  });

  function submit(job: Job): void {
    if (job.kind === 'file') return submitFile(job);
    const reply = handle(job);
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

  /** files: the reply is a file range, streamed in order behind every earlier reply (shared/file-stream.ts). */
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

  function watchHeader(): void {
    if (session.headPending && !headerTimer) {
      headerTimer = setTimeout(() => fail(CLOSED.header), limits.headerTimeoutMs);
    } else if (!session.headPending && headerTimer) {
      clearTimeout(headerTimer);
      headerTimer = undefined;
    }
  }

  function updateFlow(): void {
    if (socket.destroyed || closeWhenFlushed) return;
    const blocked = socket.writableNeedDrain || inFlight >= MAX_JOBS_IN_FLIGHT || gate?.closed === true;
    if (blocked && !socket.isPaused()) socket.pause();
    else if (!blocked && socket.isPaused()) socket.resume();
  }

  function fail(why: string): void {
    if (socket.destroyed) return;
    record.fail(why);
    socket.destroy();
  }

  return {
    peer: record.peer,
    closed,
    stop() {
      if (session.stopAfterCurrent()) closeAfterReplies();
    },
    destroy() {
      fail(CLOSED.shutdown);
    },
  };
}
