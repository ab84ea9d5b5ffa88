/**
 * The connection rules every lab applies, written once: the limits, the reason a connection
 * closed, and the connect and disconnect lines. `socket-connection.ts` applies them to a Node
 * `net.Socket` (with a timer per limit); the by-hand kit (kit/) to a raw descriptor, checking the
 * limits by a sweep between waits. Either way a client sees the same limits and the log says the
 * same words, so a difference between two labs is their model, not their bookkeeping.
 */

import type { ConnectionLimits } from './lab.js';
import { formatBytes, type Logger } from './log.js';

/** Why a connection closed, as its disconnect line says it. */
export const CLOSED = {
  /** The client sent its FIN first (or reset), and every reply was written. */
  byClient: 'closed by client',
  /** The server chose to close after its replies: an http error or `Connection: close`, or a shutdown. */
  byServer: 'closed by server',
  idle: 'idle timeout',
  lifetime: 'lifetime limit',
  header: 'header timeout',
  // At the deadline, or at once on a second signal: the words fit both.
  shutdown: 'closed at shutdown',
  /** A conversation ended the connection early (a chat member cut off), and its last words did not go out in time. */
  cutOff: 'cut off',
} as const;

/** The reason for a client whose unsent replies are over `--max-pending`, or undefined. */
export function overPending(limits: ConnectionLimits, unsentBytes: number): string | undefined {
  return unsentBytes > limits.maxPendingBytes ? `over ${formatBytes(limits.maxPendingBytes)} of unsent replies` : undefined;
}

/** When things happened on one connection, in `performance.now()` milliseconds. */
export interface ConnectionTimes {
  openedAt: number;
  /** When a byte last moved either way. */
  lastMovedAt: number;
  /** When the http request arriving began to (its first byte), or -1 while none is arriving. */
  requestStartedAt: number;
  /** Which request that is (Conversation.requestArriving), 0 for none. */
  timedRequest: number;
  /** When a connection a conversation ended early is closed, sent or not (LAST_WORDS_MS after), or -1. */
  closeBy: number;
}

/**
 * The time limit a connection has run past at `now`, or undefined. For a server that checks
 * its limits between waits instead of keeping a timer per limit; the order is the order a timer
 * per limit would fire in when several have passed.
 */
export function limitReached(limits: ConnectionLimits, times: Readonly<ConnectionTimes>, now: number): string | undefined {
  if (now - times.lastMovedAt >= limits.idleTimeoutMs) return CLOSED.idle;
  if (now - times.openedAt >= limits.maxLifetimeMs) return CLOSED.lifetime;
  if (times.requestStartedAt >= 0 && now - times.requestStartedAt >= limits.headerTimeoutMs) return CLOSED.header;
  if (times.closeBy >= 0 && now >= times.closeBy) return CLOSED.cutOff;
  return undefined;
}

/**
 * One connection's story for the log: its connect line now, its disconnect line at the end, and
 * in between the reason it will give. The first failure is the reason reported.
 */
export class ConnectionRecord {
  readonly peer: string;
  readonly openedAt = performance.now();
  readonly #log: Logger;
  #reason: string = CLOSED.byClient;
  #failed = false;

  constructor(log: Logger, peer: string) {
    this.#log = log;
    this.peer = peer;
    log.client(`client ${peer} connected`);
  }

  get reason(): string {
    return this.#reason;
  }

  /** Ended early (a limit, an error, the shutdown deadline); false if it had failed already. */
  fail(reason: string): boolean {
    if (this.#failed) return false;
    this.#failed = true;
    this.#reason = reason;
    return true;
  }

  /** The server closes after its replies: it is the one closing, unless the client's FIN came first. */
  closeAfterReplies(peerEnded: boolean): void {
    if (!this.#failed && !peerEnded) this.#reason = CLOSED.byServer;
  }

  /** The disconnect line, with the bytes each way and how long the connection lived. */
  disconnected(received: number, sent: number): void {
    const seconds = ((performance.now() - this.openedAt) / 1000).toFixed(1);
    this.#log.client(
      `client ${this.peer} disconnected (${this.#reason}; received ${formatBytes(received)}, sent ${formatBytes(sent)}, ${seconds} s)`,
    );
  }
}
