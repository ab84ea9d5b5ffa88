/**
 * The chat protocol's per-connection core: bytes in, chat actions out. No sockets, no room.
 *
 * Line-framed, as smallchat is: every complete line (ended by `\n`; a `\r` before it is dropped,
 * so `nc -C` and telnet work) is one action. What the line means:
 *   /nick NAME   take a name (letters, digits, `_` and `-`, at most MAX_NICK_BYTES);
 *   /who         ask who is in the room;
 *   /help        the commands, one line to this client;
 *   /quit        goodbye, one line to this client, and the connection closes (the room hears it left);
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
 *      line (/quit: goodbye), then the member leaves and the connection closes.
 *   2. What the room hands the member is sent. A member whose queued bytes (the carrier's
 *      `pending`) would pass the hard limit, or have stayed over the soft one too long
 *      (OutputLimit), is cut off: out of the room now (the others are told), a last notice behind
 *      its queue, and closed when that is sent or LAST_WORDS_MS later. A slow reader never slows
 *      the room.
 *   3. A room elsewhere (shared/room.ts, RelayedRoom) may ask that the client be read no more
 *      until what it said has reached the room: the carrier holds its reading.
 *   4. The peer's FIN, a failure or the close: the member leaves (once). Shutdown: it leaves
 *      without a word to the others, hears SHUTDOWN_NOTICE, and is closed once that is sent.
 */

import { type Carrier, type Conversation, type ConversationContext, LAST_WORDS_MS } from './conversation.js';
import type { Logger } from './log.js';
import { type ChatAction, cutOffLine, type MemberId, type RoomPort } from './room.js';

export { type ChatAction, cutOffLine, visible } from './room.js';

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
  /** Close after the replies: /quit, or the line limit was broken. Nothing more will be framed. */
  readonly close: boolean;
  /** Why the member leaves, for the others to hear: the line limit; none for /quit or the FIN. */
  readonly why?: string;
}

/** What /help answers: every command, in one line. */
export const HELP_REPLY = '* commands: /nick NAME (take a name), /who (who is here), /help (this list), /quit (leave); any other line is said to the room\n';

/** What /quit answers before the connection closes. */
export const QUIT_REPLY = '* goodbye\n';

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
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text.length > MAX_LINE_BYTES) return this.#tooLong(actions);
      if (text === '/quit' || text.startsWith('/quit ')) {
        this.#done = true;
        this.#partial = [];
        actions.push({ kind: 'reply', text: QUIT_REPLY });
        return { actions, close: true };
      }
      const action = parseLine(text);
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
    return { actions, close: true, why: 'line over the limit' };
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
    case '/help':
      return { kind: 'reply', text: HELP_REPLY };
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


// --- The slow-reader rule, which every lab applies to its own queue ---------------------------

/*
 * What is counted is what waits for one member in this process, beyond what the kernel has taken
 * (Node's writableLength, lab 05's write queue, lab 07's SEND queue); the kernel's socket buffers
 * fill first. The rule is Redis's client-output-buffer-limit: a
 * hard limit that cuts a member off at once, and a soft limit that cuts it off only when its
 * queue has stayed over it for SOFT_QUEUE_MS. One limit that cut at once was not enough: a model
 * that queues before it writes (lab 07 fans a whole receive of lines out into every member's
 * queue before any SEND can complete) passed it with a 70 KB paste, and cut off members that
 * were reading. A member that is reading gets under the soft limit within moments; one that is
 * not stays over it, or passes the hard limit, and the room goes on without it.
 */

/**
 * Soft limit: a member may have this much waiting for a while. 64 KiB is sixteen of the longest
 * lines, hundreds of ordinary ones.
 */
export const SOFT_QUEUE_BYTES = 64 * 1024;

/**
 * How long a queue may stay over the soft limit: far longer than a reader takes to drain a burst
 * (milliseconds), even on a loaded machine; short enough that a member that has stopped reading
 * holds its backlog for seconds, not minutes (Redis allows 60 s for its pub/sub clients).
 */
export const SOFT_QUEUE_MS = 5_000;

/**
 * Hard limit: past it a member is cut off at once. Four times the soft limit, as Redis's pub/sub
 * default (32 MB hard, 8 MB soft): a paste of a few hundred lines fits; a thousand members that
 * all stopped reading hold at most 256 MiB, and each only for SOFT_QUEUE_MS.
 */
export const HARD_QUEUE_BYTES = 4 * SOFT_QUEUE_BYTES;

/** How long a cut-off member's socket may take to send what it has (and the notice) before it is closed. */
export const CUT_OFF_GRACE_MS = LAST_WORDS_MS;

/** A member's limits: --max-pending lowers both (never raises them: it bounds every client). */
export interface QueueLimits {
  readonly soft: number;
  readonly hard: number;
  readonly softMs: number;
}

export function queueLimits(maxPendingBytes: number): QueueLimits {
  return { soft: Math.min(maxPendingBytes, SOFT_QUEUE_BYTES), hard: Math.min(maxPendingBytes, HARD_QUEUE_BYTES), softMs: SOFT_QUEUE_MS };
}

/** One member's slow-reader rule: asked at each delivery, it says whether the member is cut off. */
export class OutputLimit {
  readonly #limits: QueueLimits;
  /** When the queue went over the soft limit and has stayed over it since (ms); -1 while under. */
  #overSince = -1;

  constructor(limits: QueueLimits) {
    this.#limits = limits;
  }

  /**
   * `queued` bytes wait for the member and `adding` more are to join them at `now` (ms): the
   * reason to cut it off, or undefined. Between two deliveries a queue only shrinks, so one that
   * was under the soft limit before this delivery has been under it until now.
   */
  check(queued: number, adding: number, now: number): string | undefined {
    const { soft, hard, softMs } = this.#limits;
    const after = queued + adding;
    if (after > hard) return `too slow: over ${hard} bytes queued`;
    if (after <= soft) {
      this.#overSince = -1;
      return undefined;
    }
    if (queued <= soft || this.#overSince < 0) {
      this.#overSince = now;
      return undefined;
    }
    return now - this.#overSince >= softMs ? `too slow: over ${soft} bytes queued for ${softMs / 1000} s` : undefined;
  }
}


/** The last line a cut-off member gets, behind what was already queued for it, if it ever reads. */
export const CUT_OFF_NOTICE = '* you fell too far behind: disconnected\n';

/** What every member hears when the server shuts down. */
export const SHUTDOWN_NOTICE = '* the server is shutting down: goodbye\n';

// --- The member: the chat side of the connection contract ------------------------------------

export class ChatConversation implements Conversation {
  readonly requestArriving = 0;
  readonly waitsForRequests = false;
  /** A member's stop() says goodbye and closes, whatever it was doing. */
  readonly endsOnStop = true;
  readonly #session = new ChatSession();
  readonly #carrier: Carrier;
  readonly #room: RoomPort;
  readonly #limit: OutputLimit;
  readonly #log: Logger;
  readonly #peer: string;
  /** 0 while joining (room ids count from 1): a leave then is carried out once the join returns. */
  #id: MemberId = 0;
  /** Out of the room: nothing more is framed, nothing more is queued. */
  #left = false;

  constructor(carrier: Carrier, context: ConversationContext) {
    this.#carrier = carrier;
    this.#room = context.room;
    this.#limit = new OutputLimit(queueLimits(context.maxPendingBytes));
    this.#log = context.log;
    this.#peer = context.peer;
  }

  /** Into the room: its welcome and the others' announcement are delivered. */
  start(): void {
    this.#id = this.#room.join({ deliver: (bytes) => this.#deliver(bytes), hold: (held) => this.#carrier.holdReading(held) });
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
    // The line limit or /quit: its error line or goodbye is the last thing this member hears,
    // sent here (a relayed room would answer after the member had left).
    const error = step.actions.at(-1);
    this.#leave(step.why);
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
    const slow = this.#limit.check(this.#carrier.pending, bytes.length, performance.now());
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
