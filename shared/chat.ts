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
 * room relays as visible escapes: `visible` below), and the string can cross a
 * thread (postMessage) or a process (lab 02's IPC channel) as it is.
 *
 * What a connection does with the actions is the lab's business: `reply` goes back to this
 * connection alone, everything else goes to the room, and `close` ends the connection once the
 * replies are written.
 */

import type { Session } from './protocol.js';

/**
 * Longest line accepted, without its `\n`. A chat line is a sentence; 4 KiB is a long paragraph,
 * and it bounds what one client makes the server hold and what one message costs every member.
 */
export const MAX_LINE_BYTES = 4096;

/** Longest name: long enough for a real one, short enough to keep every message's prefix short. */
export const MAX_NICK_BYTES = 32;

const NICK = /^[A-Za-z0-9_-]+$/;

/** What one line asks for. Text is latin1: one character per byte, exactly as received. */
export type ChatAction =
  | { readonly kind: 'say'; readonly text: string }
  | { readonly kind: 'nick'; readonly name: string }
  | { readonly kind: 'who' }
  /** Bytes for this connection alone (an error line), as latin1. */
  | { readonly kind: 'reply'; readonly text: string };

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

/**
 * A message as the other members' terminals get it: C0 control bytes but TAB, DEL, and the C1
 * controls as UTF-8 encodes them (C2 80 to C2 9F) become visible escapes (`\x1b`, `\u009b`), so
 * no member can clear the others' screens, retitle their terminals or hide its name behind a
 * carriage return. Every other byte (text, UTF-8, binary above 0x7f) is relayed exactly.
 */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]|\xc2[\x80-\x9f]/g, (control) =>
    control.length === 1 ? `\\x${hex(control.charCodeAt(0))}` : `\\u00${hex(control.charCodeAt(1))}`,
  );
}

const hex = (code: number) => code.toString(16).padStart(2, '0');

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
export const CUT_OFF_GRACE_MS = 1000;

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

/** The log line for a member cut off (a warning: it shows with --quiet too). */
export function cutOffLine(peer: string, reason: string): string {
  return `client ${peer} cut off (${reason}); the room goes on without it`;
}

/** The last line a cut-off member gets, behind what was already queued for it, if it ever reads. */
export const CUT_OFF_NOTICE = '* you fell too far behind: disconnected\n';

/** What every member hears when the server shuts down. */
export const SHUTDOWN_NOTICE = '* the server is shutting down: goodbye\n';

/**
 * For a lab whose connection state has an echo-or-http Session in it (labs 01 and 05): what stands
 * in for it on a chat connection, which frames with a ChatSession instead. It frames nothing.
 */
export const NO_SESSION: Session = {
  headPending: false,
  receive: () => ({ jobs: [], close: true }),
  end: () => ({ jobs: [], close: true }),
  stopAfterCurrent: () => true,
  close: () => {},
};
