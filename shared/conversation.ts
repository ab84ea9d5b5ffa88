/**
 * The connection contract: one connection's protocol side, sans I/O, the same for every protocol.
 *
 * A `Conversation` takes bytes in and gives actions out, to a `Carrier` that the lab supplies:
 *   send(bytes)       bytes for the client, in order behind everything before them;
 *   answer(job)       a reply still to be worked out: the lab runs `respond(job)` (protocol.ts)
 *                     where its model runs work (inline, on a pool thread) and sends the result
 *                     in its turn;
 *   sendFile(job)     a file range for the client: the lab looks it up when its turn comes
 *                     (shared/file-open.ts `answerFile`) and sends the head, then the range, its
 *                     own way (sendfile, read and write, a stream, ring entries);
 *   holdReading(held) read nothing more from the client until released (a chat member whose lines
 *                     are still on their way to a room elsewhere: the relay's flow control,
 *                     shared/room.ts); what was read already is still handed in;
 *   close(reason?)    read no more; close once what is queued has gone. With a reason the
 *                     conversation ends the connection early (a chat member cut off): the reason
 *                     is the disconnect line's, and what is queued gets LAST_WORDS_MS to go out.
 * A line for the room is not an action: the chat conversation carries it to the `RoomPort` the lab
 * gives it (shared/room.ts), wherever the lab keeps the room, and hears the room's lines for its
 * client through the same `send`.
 *
 * Echo and http (protocol.ts), files (files.ts) and chat (chat.ts) implement it; protocols.ts picks
 * one from the user's choice, the one place that does. So a lab carries out these four actions its
 * own model's way and never asks which protocol it serves.
 *
 * Everything a conversation hands its lab is plain data (a Job, a FileJob), so it survives
 * structured cloning into a worker thread or a child process.
 */

import type { Logger } from './log.js';
import type { RoomPort } from './room.js';

export type ProtocolName = 'echo' | 'http' | 'chat' | 'files';
export const PROTOCOLS: readonly ProtocolName[] = ['echo', 'http', 'chat', 'files'];

export interface ProtocolConfig {
  readonly protocol: ProtocolName;
  /** Largest request head (request line plus headers) accepted, in bytes; http and files. */
  readonly maxHeaderBytes: number;
  /** Largest request body accepted, in bytes; http and files. Also bounds the reply to one request. */
  readonly maxBodyBytes: number;
  /**
   * An experiment switch for the Nagle experiment (make nagle), off in normal use: each http reply
   * becomes two jobs, its head and then its body, so every lab writes it with two writes.
   */
  readonly splitReplies?: boolean;
  /** files: the directory served, as realpath(3) gives it (shared/file-open.ts `openRoot`). */
  readonly root?: string;
}

/**
 * What a 200's Connection header says. An HTTP/1.1 connection stays open unless someone says
 * `close`, so a kept one needs no header (`undefined`). An HTTP/1.0 client assumes the server
 * closes after each response unless it says `keep-alive`: without it, `ab -k` waits for a FIN that
 * never comes. Node's http server sends the same two values.
 */
export type ConnectionHeader = 'keep-alive' | 'close' | undefined;

/** `GET /healthz`: the reply health.ts writes, liveness and readiness (plain data, like every job). */
export interface HealthJob {
  readonly kind: 'health';
  readonly ready: boolean;
  /** A HEAD request: the head alone. */
  readonly head: boolean;
  readonly connection: ConnectionHeader;
}

export type HttpErrorStatus = 400 | 413 | 417 | 431;

/**
 * One reply to work out (`Carrier.answer`), turned into bytes by `respond` (protocol.ts).
 *
 * `http-continue` is the interim `100 Continue`: a reply like any other, so every lab sends it
 * through the path it already has, in order before the final response. It costs no work.
 */
export type Job =
  | { readonly kind: 'echo'; readonly data: Uint8Array }
  /** `head`: reply with the head alone (a HEAD request, or the first part of a split reply). */
  | { readonly kind: 'http'; readonly head: boolean; readonly body: Uint8Array; readonly connection: ConnectionHeader }
  | { readonly kind: 'http-continue' }
  /** The body of a split reply (`splitReplies`), after a head-only `http` job: costs no work. */
  | { readonly kind: 'http-body'; readonly body: Uint8Array }
  | { readonly kind: 'http-error'; readonly status: HttpErrorStatus; readonly reason: string }
  /** `GET /healthz` (http and files): liveness and readiness (health.ts), without the --work-us work. */
  | HealthJob;

/** What a refused file request gets, and why (the reason goes to the log line). */
export interface Refusal {
  readonly status: 400 | 403 | 404 | 405 | 503;
  readonly reason: string;
}

/** One file request (`Carrier.sendFile`), decided as far as the request alone allows. */
export interface FileJob {
  readonly kind: 'file';
  /** HEAD: the same head as GET, no body. */
  readonly head: boolean;
  readonly method: string;
  /** The target as sent, for the log line. */
  readonly target: string;
  /** The decoded path segments under the root (empty: the root itself), unless refused. */
  readonly segments: readonly string[];
  /** The path ended in `/`: it names a directory, so a file there is 404 (`/a.txt/`), as web servers answer. */
  readonly directory: boolean;
  readonly refused: Refusal | undefined;
  /** The Range header as sent, or undefined. */
  readonly range: string | undefined;
  readonly connection: ConnectionHeader;
}

/** The lab's side: how it carries out a conversation's actions (see the top of this file). */
export interface Carrier {
  /** `shared`: one Buffer for many connections (a room's line), never changed: it need not be copied. */
  send(bytes: Uint8Array, shared?: boolean): void;
  answer(job: Job): void;
  sendFile(job: FileJob): void;
  close(reason?: string): void;
  /** Stop reading the client (true) until released (false); see the top of this file. */
  holdReading(held: boolean): void;
  /** Bytes queued in this process for the client and not yet taken by the kernel. */
  readonly pending: number;
}

/**
 * How long a connection a conversation ended early (`close(reason)`) has to send what is queued
 * (a cut-off chat member's last notice) before it is closed anyway, sent or not.
 */
export const LAST_WORDS_MS = 1000;

/** What a conversation may need besides its carrier; every lab gives all of it. */
export interface ConversationContext {
  readonly protocol: ProtocolConfig;
  /** chat: the room this connection's member joins; where it lives is the lab's model. */
  readonly room: RoomPort;
  /** --max-pending: chat bounds each member's queue by it too (shared/chat.ts `queueLimits`). */
  readonly maxPendingBytes: number;
  readonly log: Logger;
  /** The client's address, for log lines. */
  readonly peer: string;
}

/** One connection's protocol side. Every method may call the carrier, before it returns. */
export interface Conversation {
  /** The lab is ready for actions (a chat member joins here, and its welcome is sent). */
  start(): void;
  /** Bytes the client sent. They may be a view of the lab's read buffer: whatever is kept is copied. */
  receive(bytes: Buffer): void;
  /** The client half-closed (its FIN): what it sent is still answered, then `close`. */
  end(): void;
  /** The server is shutting down: finish what is in progress (http: the current request), take nothing new. */
  stop(): void;
  /**
   * Which request of this connection is arriving (1, 2, ...) while part of it has come and not all
   * of it, head and body; 0 otherwise. The header timeout (--header-timeout) runs from the first
   * byte of each request to its last: a body trickled a byte at a time is bounded as a head is.
   */
  readonly requestArriving: number;
  /**
   * True when the client speaks first, request by request (http, files), so a shutdown lets the
   * request in progress finish; an echo stream or a chat member has no request to wait for.
   */
  readonly waitsForRequests: boolean;
  /**
   * True when `stop()` now would end the connection without another byte from the client: a chat
   * member, an http connection between requests. Never for an echo stream, whose client decides.
   * Lab 08 reads it before each blocking read: a thread asleep in read() hears of a shutdown only
   * if something wakes it, and only a connection that would end at once is worth waking then.
   */
  readonly endsOnStop: boolean;
  /**
   * The connection is gone (or failed): leave the room, free what lives outside the JS heap (the
   * http parser's native half). No carrier call follows. Idempotent.
   */
  release(): void;
}
