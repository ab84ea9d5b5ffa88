/**
 * The chat protocol's per-connection core: bytes in, chat actions out. No sockets, no room.
 *
 * Line-framed, as smallchat is: every complete line (ended by `\n`; a `\r` before it is dropped,
 * so `nc -C` and telnet work) is one action. What the line means:
 *   /nick NAME   take a name (letters, digits, `_` and `-`, at most MAX_NICK_BYTES);
 *   /who         ask who is in the room;
 *   /anything    an unknown command: one error line to this client, nothing to the room;
 *   an empty line: nothing;
 *   anything else: a message, which the room (shared/room.ts) sends to every OTHER member as
 *                `<name>: <line>\n`.
 * A line longer than MAX_LINE_BYTES (not counting its `\r\n` or `\n`) gets one error line and the connection closes, as the echo
 * protocols close on their limits: the server never holds more than one line per client.
 *
 * Bytes are kept as bytes: a line is carried as a latin1 string (one character per byte), so
 * binary and UTF-8 text reach the other members exactly as sent (but for control bytes, which the
 * room relays as visible escapes: `visible` in shared/room.ts), and the string can cross a
 * thread (postMessage) or a process (lab 02's IPC channel) as it is.
 *
 * `ChatConversation` is the chat protocol's side of the connection contract (conversation.ts):
 * the member, written once for every lab. It frames the lines, carries each to the room the lab
 * gives it (shared/room.ts: here, or relayed to another thread or process), queues what the room
 * hands it through the lab's carrier, and applies the slow-reader bound:
 *   1. Bytes read are framed into lines; each goes to the room (even this member's own error
 *      lines, so they keep their place among its replies). A line over the limit gets its error
 *      line, then the member leaves and the connection closes.
 *   2. What the room hands the member is sent. A member whose queued bytes (the carrier's
 *      `pending`) would pass the bound (queueBound) is cut off: out of the room now (the others are
 *      told), a last notice behind its queue, and closed when that is sent or LAST_WORDS_MS later.
 *      A slow reader never slows the room.
 *   3. The peer's FIN, a failure or the close: the member leaves (once). Shutdown: it leaves
 *      without a word to the others, hears SHUTDOWN_NOTICE, and is closed once that is sent.
 */

import { type Carrier, type Conversation, type ConversationContext, LAST_WORDS_MS } from './conversation.js';
import type { Logger } from './log.js';
import type { ChatAction, MemberId, RoomPort } from './room.js';

export { type ChatAction, visible } from './room.js';

/**
 * Longest line accepted, without its `\n`. A chat line is a sentence; 4 KiB is a long paragraph,
 * and it bounds what one client makes the server hold and what one message costs every member.
 */
export const MAX_LINE_BYTES = 4096;

/** Longest name: long enough for a real one, short enough to keep every message's prefix short. */
export const MAX_NICK_BYTES = 32;

const NICK = /^[A-Za-z0-9_-]+$/;

export interface ChatStep {
  readonly actions: ChatAction[];
  /** Close after the replies: the line limit was broken. Nothing more will be framed. */
  readonly close: boolean;
}

const NOTHING: ChatStep = { actions: [], close: false };
const NEWLINE = 0x0a;

/** Frames one connection's bytes into chat actions. */
export class ChatSession {
  /** Bytes of the line still unfinished, as latin1 pieces. */
  #partial: string[] = [];
  #partialBytes = 0;
  #done = false;

  receive(chunk: Uint8Array): ChatStep {
    if (this.#done) return NOTHING;
    const actions: ChatAction[] = [];
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const end = bytes.indexOf(NEWLINE, start);
      const pieceEnd = end < 0 ? bytes.length : end;
      // One byte over the limit may be the `\r` of a CRLF: the line is measured without it below.
      if (this.#partialBytes + (pieceEnd - start) > MAX_LINE_BYTES + 1) return this.#tooLong(actions);
      if (end < 0) {
        if (pieceEnd > start) {
          this.#partial.push(bytes.toString('latin1', start, pieceEnd));
          this.#partialBytes += pieceEnd - start;
          // Over the limit already, unless the one byte over is a CR whose LF has yet to come.
          if (this.#partialBytes > MAX_LINE_BYTES && bytes[pieceEnd - 1] !== 0x0d) return this.#tooLong(actions);
        }
        return actions.length === 0 ? NOTHING : { actions, close: false };
      }
      let line = bytes.toString('latin1', start, end);
      if (this.#partial.length > 0) {
        line = this.#partial.join('') + line;
        this.#partial = [];
        this.#partialBytes = 0;
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.length > MAX_LINE_BYTES) return this.#tooLong(actions);
      const action = parseLine(line);
      if (action) actions.push(action);
      start = end + 1;
    }
  }

  /**
   * The peer's FIN: an unfinished last line is dropped (a chat line is complete only with its
   * newline, as in smallchat), and the connection closes.
   */
  end(): ChatStep {
    this.#done = true;
    this.#partial = [];
    return { actions: [], close: true };
  }

  #tooLong(actions: ChatAction[]): ChatStep {
    this.#done = true;
    this.#partial = [];
    actions.push({ kind: 'reply', text: `* line over ${MAX_LINE_BYTES} bytes: closing the connection\n` });
    return { actions, close: true };
  }
}

function parseLine(line: string): ChatAction | undefined {
  if (line.length === 0) return undefined;
  if (line[0] !== '/') return { kind: 'say', text: line };
  const [command, ...rest] = line.split(' ');
  const argument = rest.join(' ').trim();
  switch (command) {
    case '/nick':
      if (!NICK.test(argument) || argument.length > MAX_NICK_BYTES) {
        return { kind: 'reply', text: `* /nick NAME: a name is 1 to ${MAX_NICK_BYTES} letters, digits, _ or -\n` };
      }
      return { kind: 'nick', name: argument };
    case '/who':
      return { kind: 'who' };
    default:
      return { kind: 'reply', text: `* unknown command ${printable(command!)} (try /nick NAME or /who)\n` };
  }
}

/** A command as the error line quotes it: at most 32 bytes, control bytes as `?`. */
function printable(text: string): string {
  const short = text.length > 32 ? `${text.slice(0, 32)}...` : text;
  // eslint-disable-next-line no-control-regex
  return short.replace(/[\x00-\x1f\x7f-\xff]/g, '?');
}


// --- The slow-reader policy, which every lab applies to its own queue -------------------------

/**
 * Most bytes waiting to be sent to one member (its queue in this process; the kernel's socket
 * buffers come before it). A member whose queue would pass this is cut off: it left the room
 * when it stopped keeping up, and the room does not wait for it or hold its backlog. 64 KiB is
 * sixteen of the longest lines, hundreds of ordinary ones; a thousand members' queues stay
 * under 64 MiB. --max-pending lowers it (never raises it: it bounds every member).
 */
export const MAX_QUEUE_BYTES = 64 * 1024;

/** How long a cut-off member's socket may take to send what it has (and the notice) before it is closed. */
export const CUT_OFF_GRACE_MS = LAST_WORDS_MS;

/** One member's bound: --max-pending or MAX_QUEUE_BYTES, whichever is less. */
export function queueBound(maxPendingBytes: number): number {
  return Math.min(maxPendingBytes, MAX_QUEUE_BYTES);
}

/** The reason a member is cut off, when `queued` bytes would be over `bound`; undefined otherwise. */
export function tooSlow(bound: number, queued: number): string | undefined {
  return queued > bound ? `too slow: over ${bound} bytes queued` : undefined;
}

/** The log line for a member cut off (a warning: it shows with --quiet too). */
export function cutOffLine(peer: string, reason: string): string {
  return `client ${peer} cut off (${reason}); the room goes on without it`;
}

/** The last line a cut-off member gets, behind what was already queued for it, if it ever reads. */
export const CUT_OFF_NOTICE = '* you fell too far behind: disconnected\n';

/** What every member hears when the server shuts down. */
export const SHUTDOWN_NOTICE = '* the server is shutting down: goodbye\n';

// --- The member: the chat side of the connection contract ------------------------------------

export class ChatConversation implements Conversation {
  readonly headPending = false;
  readonly waitsForRequests = false;
  readonly #session = new ChatSession();
  readonly #carrier: Carrier;
  readonly #room: RoomPort;
  readonly #bound: number;
  readonly #log: Logger;
  readonly #peer: string;
  /** 0 while joining (room ids count from 1): a leave then is carried out once the join returns. */
  #id: MemberId = 0;
  /** Out of the room: nothing more is framed, nothing more is queued. */
  #left = false;

  constructor(carrier: Carrier, context: ConversationContext) {
    this.#carrier = carrier;
    this.#room = context.room;
    this.#bound = queueBound(context.maxPendingBytes);
    this.#log = context.log;
    this.#peer = context.peer;
  }

  /** Into the room: its welcome and the others' announcement are delivered. */
  start(): void {
    this.#id = this.#room.join({ deliver: (bytes) => this.#deliver(bytes) });
    // Its welcome can cut it off (a --max-pending under its length): it left before its id was known.
    if (this.#left) this.#room.leave(this.#id);
  }

  /** Rule 1: each complete line goes to the room. */
  receive(bytes: Buffer): void {
    if (this.#left) return;
    const step = this.#session.receive(bytes);
    const actions = step.close ? step.actions.slice(0, -1) : step.actions;
    for (const action of actions) this.#room.act(this.#id, action);
    if (!step.close) return;
    // The line limit: its error line is the last thing this member hears, sent here (a relayed
    // room would answer after the member had left).
    const error = step.actions.at(-1);
    this.#leave('line over the limit');
    if (error?.kind === 'reply') this.#carrier.send(Buffer.from(error.text, 'latin1'));
    this.#carrier.close();
  }

  end(): void {
    this.#session.end();
    this.#leave();
    this.#carrier.close();
  }

  /** Shutdown: leaves without a word to the others, hears goodbye, and is closed. */
  stop(): void {
    if (this.#left) return;
    this.#leave(undefined, false);
    this.#carrier.send(Buffer.from(SHUTDOWN_NOTICE, 'latin1'));
    this.#carrier.close();
  }

  release(): void {
    this.#leave();
  }

  /** Out of the room, once; the others hear of it (with `why`) unless `announce` is false. */
  #leave(why?: string, announce = true): void {
    if (this.#left) return;
    this.#left = true;
    if (this.#id !== 0) this.#room.leave(this.#id, why, announce);
  }

  /** Rule 2: the room hands this member bytes. */
  #deliver(bytes: Buffer): void {
    if (this.#left) return;
    const slow = tooSlow(this.#bound, this.#carrier.pending + bytes.length);
    if (!slow) {
      this.#carrier.send(bytes, true);
      return;
    }
    this.#log.warn(cutOffLine(this.#peer, slow));
    this.#leave('too slow');
    this.#carrier.send(Buffer.from(CUT_OFF_NOTICE, 'latin1'));
    this.#carrier.close(slow);
  }
}
