/**
 * A chat member for the labs that keep each connection's outgoing bytes in a queue of their own
 * (lab 05's write queue, lab 07's SEND queue): `serveChatSocket`'s counterpart where there is no
 * net.Socket. The framing, the room's join and leave, the slow-reader bound and the shutdown
 * notice are here, once; how bytes are queued and sent, and how a connection closes, is the
 * lab's, through `ChatLine`.
 *
 * The rules, as in shared/chat-socket.ts:
 *   1. Bytes read are framed into lines (shared/chat.ts); each goes to the room. A line over the
 *      limit gets its error line (/quit: goodbye), then the member leaves and the connection closes.
 *   2. What the room hands the member joins its queue. A member whose queue would pass the hard
 *      limit, or has stayed over the soft one too long (chat.ts, OutputLimit), is cut off: out of
 *      the room now, a last notice behind its queue, and closed when that is sent or
 *      CUT_OFF_GRACE_MS later (the lab's sweep asks `cutOffDue`).
 *   3. The peer's FIN, a failure or the close: the member leaves (once). Shutdown: it leaves
 *      without a word to the others, hears SHUTDOWN_NOTICE, and is closed once that is sent.
 */

import { ChatSession, CUT_OFF_GRACE_MS, CUT_OFF_NOTICE, cutOffLine, OutputLimit, SHUTDOWN_NOTICE, type QueueLimits } from './chat.js';
import type { Logger } from './log.js';
import type { MemberId, RoomPort } from './room.js';
import type { ConnectionRecord } from './rules.js';

/** What a member needs of its lab's connection. */
export interface ChatLine {
  readonly record: ConnectionRecord;
  /** Reply bytes queued and not yet taken by the kernel. */
  pending(): number;
  /** False once the connection is closing or gone: nothing more is queued for it. */
  open(): boolean;
  /** Queues bytes for the client. `shared`: one Buffer for the whole room, never changed, need not be copied. */
  send(bytes: Uint8Array, shared: boolean): void;
  /** Closes the connection once what is queued has been sent. */
  closeAfterReplies(): void;
}

export class ChatMember {
  readonly #session = new ChatSession();
  readonly #room: RoomPort;
  readonly #line: ChatLine;
  readonly #limit: OutputLimit;
  readonly #log: Logger;
  /** 0 while joining (room ids count from 1): a leave then is carried out once the join returns. */
  #id: MemberId = 0;
  #left = false;
  #cutOffAt = 0;

  constructor(room: RoomPort, line: ChatLine, limits: QueueLimits, log: Logger) {
    this.#room = room;
    this.#line = line;
    this.#limit = new OutputLimit(limits);
    this.#log = log;
  }

  /** Into the room: its welcome and the others' announcement are delivered. */
  join(): void {
    this.#id = this.#room.join({ deliver: (bytes) => this.#deliver(bytes) });
    // Its welcome can cut it off (a --max-pending under its length): it left before its id was known.
    if (this.#left) this.#room.leave(this.#id);
  }

  /** Bytes the client sent: each complete line goes to the room. */
  receive(bytes: Uint8Array): void {
    const step = this.#session.receive(bytes);
    const actions = step.close ? step.actions.slice(0, -1) : step.actions;
    for (const action of actions) this.#room.act(this.#id, action);
    if (!step.close) return;
    const error = step.actions.at(-1);
    if (error?.kind === 'reply') this.#line.send(Buffer.from(error.text, 'latin1'), false);
    this.leave(step.why);
    this.#line.closeAfterReplies();
  }

  /** Out of the room, once; the others hear of it (with `why`) unless `announce` is false. */
  leave(why?: string, announce = true): void {
    if (this.#left) return;
    this.#left = true;
    if (this.#id !== 0) this.#room.leave(this.#id, why, announce);
  }

  /** Shutdown: leaves without a word to the others, hears goodbye, and is closed. */
  stop(): void {
    if (this.#left) return;
    this.leave(undefined, false);
    this.#line.send(Buffer.from(SHUTDOWN_NOTICE, 'latin1'), false);
    this.#line.closeAfterReplies();
  }

  /** A cut-off member's grace is over: the lab closes it now, sent or not. */
  cutOffDue(now: number): boolean {
    return this.#cutOffAt > 0 && now >= this.#cutOffAt;
  }

  #deliver(bytes: Uint8Array): void {
    if (this.#left || !this.#line.open()) return;
    const now = performance.now();
    const slow = this.#limit.check(this.#line.pending(), bytes.length, now);
    if (slow) {
      this.#line.record.fail(slow);
      this.#log.warn(cutOffLine(this.#line.record.peer, slow));
      this.leave('too slow');
      this.#line.send(Buffer.from(CUT_OFF_NOTICE, 'latin1'), false);
      this.#cutOffAt = now + CUT_OFF_GRACE_MS;
      this.#line.closeAfterReplies();
      return;
    }
    this.#line.send(bytes, true);
  }
}
