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
export const CUT_OFF_GRACE_MS = 1000;

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
