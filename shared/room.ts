/**
 * The chat room: who is in it, what they are called, and which member gets which bytes. No
 * sockets, no threads, no timers: every lab uses this same room, and only where it lives differs.
 *
 *   Room        The state and the rules, pure: join, leave and act return deliveries ("these
 *               bytes to this member", "these bytes to everyone but that one").
 *   RoomPort    What a connection sees of the room, wherever the room is: join with a Member (an
 *               object with `deliver(bytes)`), act, leave.
 *   LocalRoom   A RoomPort with the Room right here (labs 01, 03, 04, 05): a delivery is a call.
 *   RelayedRoom A RoomPort whose Room is elsewhere (lab 02's parent, lab 06's main thread): join,
 *   RoomHub     act and leave become RoomRequests sent to the hub, which runs the Room and sends
 *               each holder of members one RoomDelivery per message; the holder fans it out to
 *               its own members. Both ends are plain data, so they cross a process's IPC channel
 *               or a thread's postMessage as they are.
 *
 * The relay's flow control. An IPC channel or a postMessage port has none: a member that floods
 * the room was read as fast as its socket gave bytes, and every line waited in the channel to the
 * hub and in the channels from it (issue 27: lab 02's child grew to 860 MB, lab 06 to 670 MB). So
 * both directions are counted, credit-style, as TCP's window does:
 *   - A holder counts the bytes each member has sent to the hub and the hub has not yet
 *     acknowledged; over RELAY_WINDOW_BYTES it stops reading that member's socket (Member.hold)
 *     until the count is back under half of it. Its bytes wait in the kernel, whose receive window
 *     slows the client down.
 *   - The hub acknowledges what it has handled, ACK_STEP_BYTES at a time, and counts the bytes it
 *     has posted to each holder that the holder has not yet said it consumed. While any holder is
 *     over HOLDER_WINDOW_BYTES it holds every acknowledgement: every sender stops until that
 *     holder has caught up.
 * A holder consumes a delivery by handing it to its members' queues, which the slow-reader rule
 * bounds (shared/chat.ts): a member that does not read is cut off, so a holder never waits for one.
 * What it costs: a flooding sender goes at the pace of the slowest holder's event loop, not of any
 * member's reading; one small message per ACK_STEP_BYTES each way.
 *
 * Text is latin1 (one character per byte, shared/chat.ts): a delivery's bytes are its text encoded
 * once, however many members receive it.
 */


export type MemberId = number;

/** What one chat line asks of the room (shared/chat.ts frames the lines). Text is latin1: one character per byte, exactly as received. */
export type ChatAction =
  | { readonly kind: 'say'; readonly text: string }
  | { readonly kind: 'nick'; readonly name: string }
  | { readonly kind: 'who' }
  /** Bytes for this connection alone (an error line), as latin1. */
  | { readonly kind: 'reply'; readonly text: string };

/** Bytes for one member, or for every member but one (a message, an announcement). */
export type Delivery = { readonly to: MemberId; readonly text: string } | { readonly allBut: MemberId; readonly text: string };

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

/**
 * The log line for a member cut off (a warning: it shows with --quiet too): the member's own
 * queue over its bound (shared/chat.ts), or, in lab 08, another member's thread that could not
 * write to it within its send timeout.
 */
export function cutOffLine(peer: string, reason: string): string {
  return `client ${peer} cut off (${reason}); the room goes on without it`;
}

/** How many names a newcomer's welcome lists before it says "and N more" (/who lists them all). */
const WELCOME_NAMES = 10;

/**
 * Where a Room keeps its members: in Maps in one thread (MapMemberTable, every lab but one), or in
 * memory several threads share, each holding members of its own (lab 08). The Room's rules are the
 * same over either; a table shared by threads is used under the lab's lock.
 */
export interface MemberTable {
  readonly size: number;
  nameOf(id: MemberId): string | undefined;
  /** The member holding `name`, however it is written: `alice` and `Alice` look like one person in a room. */
  holderOf(name: string): MemberId | undefined;
  /** Adds the member, or renames it: it keeps its place in the join order. */
  set(id: MemberId, name: string): void;
  delete(id: MemberId): void;
  /** Every name, in the order the members joined. */
  names(): string[];
  /** Counts one more join and returns the count: a newcomer is user<N> after it. */
  countJoin(): number;
}

/** The members in this thread's memory. */
export class MapMemberTable implements MemberTable {
  /** Member id → name, in join order (a Map keeps insertion order, and set() on a key keeps its place). */
  readonly #names = new Map<MemberId, string>();
  /** Lower-cased name → member id. */
  readonly #byName = new Map<string, MemberId>();
  #joins = 0;

  get size(): number {
    return this.#names.size;
  }

  nameOf(id: MemberId): string | undefined {
    return this.#names.get(id);
  }

  holderOf(name: string): MemberId | undefined {
    return this.#byName.get(name.toLowerCase());
  }

  set(id: MemberId, name: string): void {
    const old = this.#names.get(id);
    if (old !== undefined) this.#byName.delete(old.toLowerCase());
    this.#names.set(id, name);
    this.#byName.set(name.toLowerCase(), id);
  }

  delete(id: MemberId): void {
    const name = this.#names.get(id);
    if (name === undefined) return;
    this.#names.delete(id);
    this.#byName.delete(name.toLowerCase());
  }

  names(): string[] {
    return [...this.#names.values()];
  }

  countJoin(): number {
    return ++this.#joins;
  }
}

export class Room {
  readonly #members: MemberTable;

  constructor(members: MemberTable = new MapMemberTable()) {
    this.#members = members;
  }

  get size(): number {
    return this.#members.size;
  }

  nameOf(id: MemberId): string | undefined {
    return this.#members.nameOf(id);
  }

  join(id: MemberId): Delivery[] {
    const members = this.#members;
    if (members.nameOf(id) !== undefined) return [];
    let name: string;
    do name = `user${members.countJoin()}`;
    while (members.holderOf(name) !== undefined);
    const others = members.names();
    members.set(id, name);
    const listed = others.slice(0, WELCOME_NAMES).join(', ') + (others.length > WELCOME_NAMES ? ` and ${others.length - WELCOME_NAMES} more` : '');
    const here = others.length === 0 ? 'nobody else is here' : `here: ${listed}`;
    return this.#toOthers(id, `* ${name} joined\n`, [{ to: id, text: `* you are ${name}; ${here} (/nick NAME, /who)\n` }]);
  }

  /** The member is gone; `why`, if given, is said in the announcement. Quiet: nobody is told. */
  leave(id: MemberId, why?: string, announce = true): Delivery[] {
    const name = this.#members.nameOf(id);
    if (name === undefined) return [];
    this.#members.delete(id);
    return announce ? this.#toOthers(id, `* ${name} left${why ? ` (${why})` : ''}\n`) : [];
  }

  act(id: MemberId, action: ChatAction): Delivery[] {
    const members = this.#members;
    const name = members.nameOf(id);
    if (name === undefined) return [];
    switch (action.kind) {
      case 'say':
        // The one place a member's words reach the others: control bytes made visible here.
        return this.#toOthers(id, `${name}: ${visible(action.text)}\n`);
      case 'reply':
        return [{ to: id, text: action.text }];
      case 'who': {
        const names = members.names().map((other) => (other === name ? `${other} (you)` : other));
        return [{ to: id, text: `* here: ${names.join(', ')}\n` }];
      }
      case 'nick': {
        if (action.name === name) return [{ to: id, text: `* you are ${name} already\n` }];
        const holder = members.holderOf(action.name);
        if (holder !== undefined && holder !== id) return [{ to: id, text: `* ${action.name} is taken\n` }];
        members.set(id, action.name);
        return this.#toOthers(id, `* ${name} is now ${action.name}\n`, [{ to: id, text: `* you are now ${action.name}\n` }]);
      }
    }
  }

  /** `text` to everyone but `id`, after `first`; nothing when nobody else is here. */
  #toOthers(id: MemberId, text: string, first: Delivery[] = []): Delivery[] {
    const othersHere = this.#members.size - (this.#members.nameOf(id) !== undefined ? 1 : 0);
    return othersHere > 0 ? [...first, { allBut: id, text }] : first;
  }
}

// --- What a connection sees ------------------------------------------------------------------

/** A connection in the room: the room hands it bytes, which it queues (bounded) and sends. */
export interface Member {
  deliver(bytes: Buffer): void;
  /** Stop reading the client (true) until released (false): what it sent is still on its way to a room elsewhere. */
  hold(held: boolean): void;
}

export interface RoomPort {
  /** Adds the member; its welcome and the others' announcement are delivered. */
  join(member: Member): MemberId;
  act(id: MemberId, action: ChatAction): void;
  /** `announce` false: leave without a word to the others (the server is shutting down). */
  leave(id: MemberId, why?: string, announce?: boolean): void;
}

/**
 * Members held right here, by id, and the fan-out of one delivery to them. A member may leave
 * while bytes are being handed out (a slow reader cut off by its bound): that leave is carried
 * out after the fan-out, so every member sees the message before the announcement.
 */
class Holders {
  readonly members = new Map<MemberId, Member>();
  #fanningOut = false;
  readonly #afterFanOut: (() => void)[] = [];

  /** Bytes for `to`, or for everyone here but `allBut` (undefined: everyone). */
  fanOut(text: string, to: MemberId | undefined, allBut: MemberId | undefined): void {
    const bytes = Buffer.from(text, 'latin1');
    this.#fanningOut = true;
    try {
      if (to !== undefined) this.members.get(to)?.deliver(bytes);
      else for (const [id, member] of this.members) if (id !== allBut) member.deliver(bytes);
    } finally {
      this.#fanningOut = false;
    }
    while (this.#afterFanOut.length > 0) this.#afterFanOut.shift()!();
  }

  /** Runs `step` now, or after the fan-out in progress. */
  later(step: () => void): void {
    if (this.#fanningOut) this.#afterFanOut.push(step);
    else step();
  }
}

/** The room in the same thread as its members: every delivery is a call. */
export class LocalRoom implements RoomPort {
  readonly #room = new Room();
  readonly #holders = new Holders();
  #nextId = 1;

  get size(): number {
    return this.#room.size;
  }

  join(member: Member): MemberId {
    const id = this.#nextId++;
    this.#holders.members.set(id, member);
    this.#holders.later(() => this.#apply(this.#room.join(id)));
    return id;
  }

  act(id: MemberId, action: ChatAction): void {
    this.#holders.later(() => this.#apply(this.#room.act(id, action)));
  }

  leave(id: MemberId, why?: string, announce = true): void {
    this.#holders.members.delete(id);
    this.#holders.later(() => this.#apply(this.#room.leave(id, why, announce)));
  }

  #apply(deliveries: Delivery[]): void {
    for (const delivery of deliveries) {
      if ('to' in delivery) this.#holders.fanOut(delivery.text, delivery.to, undefined);
      else this.#holders.fanOut(delivery.text, undefined, delivery.allBut);
    }
  }
}

// --- A room elsewhere: the relay ---------------------------------------------------------------

/**
 * What one member may have on its way to the hub, unacknowledged, before it is no longer read:
 * sixteen of the longest lines, hundreds of ordinary ones; the same as a member's soft queue limit.
 */
export const RELAY_WINDOW_BYTES = 64 * 1024;

/**
 * What the hub may have posted to one holder that the holder has not consumed, before it holds
 * every acknowledgement. A holder serves many members (lab 06's loop), so a few members' windows.
 */
export const HOLDER_WINDOW_BYTES = 4 * RELAY_WINDOW_BYTES;

/** Acknowledgements go in steps of this many bytes: one small message per 16 KiB, each way. */
const ACK_STEP_BYTES = 16 * 1024;

/**
 * What one relayed message counts for beyond its text: its envelope (JSON over lab 02's IPC
 * channel, a structured clone for lab 06) is some tens of bytes, so a flood of empty-ish lines
 * is bounded as well as one of long ones.
 */
const MESSAGE_BYTES = 64;

/** The bytes a request counts for in a member's window; joins and leaves count for nothing. */
function actionBytes(action: ChatAction): number {
  switch (action.kind) {
    case 'say':
    case 'reply':
      return MESSAGE_BYTES + action.text.length;
    case 'nick':
      return MESSAGE_BYTES + action.name.length;
    case 'who':
      return MESSAGE_BYTES;
  }
}

/** From a holder of members to the hub. `id` is the holder's own number for the member. */
export type RoomRequest =
  | { readonly type: 'join'; readonly id: MemberId }
  | { readonly type: 'act'; readonly id: MemberId; readonly action: ChatAction }
  | { readonly type: 'leave'; readonly id: MemberId; readonly why?: string; readonly announce: boolean }
  /** The holder has handed this many bytes of deliveries to its members (flow control). */
  | { readonly type: 'consumed'; readonly bytes: number };

/**
 * From the hub to a holder: `text` for its member `to`, or for all its members but `allBut` (or
 * all); or an acknowledgement: the hub has handled `bytes` more of member `acked`'s requests.
 */
export type RoomDelivery =
  | { readonly text: string; readonly to?: MemberId; readonly allBut?: MemberId }
  | { readonly acked: MemberId; readonly bytes: number };

/** The holder's end (lab 02's child, lab 06's loop): members here, the Room at the hub. */
export class RelayedRoom implements RoomPort {
  readonly #send: (request: RoomRequest) => void;
  readonly #holders = new Holders();
  /**
   * Members whose join the hub has not answered yet. What the room says to everyone meanwhile was
   * said before they were in it (the hub had not seen their join), so it is not theirs: they are
   * held aside until their welcome, the first delivery the hub addresses to a newcomer. Without
   * this a member heard "* userN joined" of earlier members before its own welcome, which the
   * Room never says and a LocalRoom never does (a 1,000-member join in lab 06 showed it).
   */
  readonly #joining = new Map<MemberId, Member>();
  /** Per member: bytes sent to the hub and not yet acknowledged (the relay's flow control, above). */
  readonly #unacknowledged = new Map<MemberId, number>();
  /** Members no longer read until their bytes are acknowledged. */
  readonly #held = new Set<MemberId>();
  /** Bytes of deliveries handed to the members here since the hub was last told. */
  #consumed = 0;
  #nextId = 1;

  constructor(send: (request: RoomRequest) => void) {
    this.#send = send;
  }

  join(member: Member): MemberId {
    const id = this.#nextId++;
    this.#joining.set(id, member);
    this.#send({ type: 'join', id });
    return id;
  }

  act(id: MemberId, action: ChatAction): void {
    const member = this.#holders.members.get(id) ?? this.#joining.get(id);
    if (!member) return;
    this.#send({ type: 'act', id, action });
    const unacknowledged = (this.#unacknowledged.get(id) ?? 0) + actionBytes(action);
    this.#unacknowledged.set(id, unacknowledged);
    if (unacknowledged > RELAY_WINDOW_BYTES && !this.#held.has(id)) {
      this.#held.add(id);
      member.hold(true);
    }
  }

  leave(id: MemberId, why?: string, announce = true): void {
    if (!this.#holders.members.delete(id) && !this.#joining.delete(id)) return;
    this.#unacknowledged.delete(id);
    this.#held.delete(id);
    this.#send(why === undefined ? { type: 'leave', id, announce } : { type: 'leave', id, why, announce });
  }

  /** A delivery from the hub, for the members held here; or an acknowledgement. */
  receive(delivery: RoomDelivery): void {
    if ('acked' in delivery) {
      this.#acknowledged(delivery.acked, delivery.bytes);
      return;
    }
    const newcomer = delivery.to === undefined ? undefined : this.#joining.get(delivery.to);
    if (newcomer) {
      this.#joining.delete(delivery.to!);
      this.#holders.members.set(delivery.to!, newcomer);
    }
    this.#holders.fanOut(delivery.text, delivery.to, delivery.allBut);
    this.#consumed += MESSAGE_BYTES + delivery.text.length;
    if (this.#consumed >= ACK_STEP_BYTES) {
      this.#send({ type: 'consumed', bytes: this.#consumed });
      this.#consumed = 0;
    }
  }

  /** The hub has handled `bytes` more of member `id`'s requests: read it again once under half its window. */
  #acknowledged(id: MemberId, bytes: number): void {
    const left = (this.#unacknowledged.get(id) ?? 0) - bytes;
    if (!this.#unacknowledged.has(id)) return;
    this.#unacknowledged.set(id, Math.max(0, left));
    if (left > RELAY_WINDOW_BYTES / 2 || !this.#held.delete(id)) return;
    (this.#holders.members.get(id) ?? this.#joining.get(id))?.hold(false);
  }
}

/**
 * The hub's end (lab 02's parent, lab 06's main thread): the one Room, and which holder has each
 * member. A message costs one RoomDelivery per holder that has a member to receive it, however
 * many members that holder has: the holder does its own fan-out.
 */
export class RoomHub<Holder> {
  readonly #room = new Room();
  readonly #post: (holder: Holder, delivery: RoomDelivery) => void;
  /** Room-wide member id → its holder and the holder's number for it. */
  readonly #where = new Map<MemberId, { readonly holder: Holder; readonly id: MemberId }>();
  /** Holder → (its number for a member → room-wide id). */
  readonly #held = new Map<Holder, Map<MemberId, MemberId>>();
  /** Per holder: bytes posted to it that it has not yet said it consumed (the relay's flow control). */
  readonly #unconsumed = new Map<Holder, number>();
  /** Holders over HOLDER_WINDOW_BYTES: while any is, no acknowledgement goes out. */
  readonly #behind = new Set<Holder>();
  /** Per holder, per its member: bytes of requests handled and not yet acknowledged. */
  readonly #toAcknowledge = new Map<Holder, Map<MemberId, number>>();
  #nextId = 1;

  constructor(post: (holder: Holder, delivery: RoomDelivery) => void) {
    this.#post = post;
  }

  get size(): number {
    return this.#room.size;
  }

  handle(holder: Holder, request: RoomRequest): void {
    if (request.type === 'consumed') {
      const left = (this.#unconsumed.get(holder) ?? 0) - request.bytes;
      this.#unconsumed.set(holder, Math.max(0, left));
      if (left <= HOLDER_WINDOW_BYTES && this.#behind.delete(holder) && this.#behind.size === 0) this.#acknowledgeAll();
      return;
    }
    let held = this.#held.get(holder);
    if (!held) this.#held.set(holder, (held = new Map()));
    if (request.type === 'join') {
      if (held.has(request.id)) return;
      const id = this.#nextId++;
      held.set(request.id, id);
      this.#where.set(id, { holder, id: request.id });
      this.#apply(this.#room.join(id));
      return;
    }
    const id = held.get(request.id);
    if (id === undefined) return;
    if (request.type === 'act') {
      this.#apply(this.#room.act(id, request.action));
      this.#acknowledge(holder, request.id, actionBytes(request.action));
    } else {
      this.#forget(holder, request.id, id);
      this.#apply(this.#room.leave(id, request.why, request.announce));
    }
  }

  /** The holder is gone (lab 02: a child exited): each of its members leaves. */
  detach(holder: Holder, why?: string): void {
    const held = this.#held.get(holder);
    this.#held.delete(holder);
    this.#toAcknowledge.delete(holder);
    this.#unconsumed.delete(holder);
    if (this.#behind.delete(holder) && this.#behind.size === 0) this.#acknowledgeAll();
    if (!held) return;
    for (const id of held.values()) {
      this.#where.delete(id);
      this.#apply(this.#room.leave(id, why));
    }
  }

  #forget(holder: Holder, local: MemberId, id: MemberId): void {
    this.#held.get(holder)?.delete(local);
    this.#toAcknowledge.get(holder)?.delete(local);
    this.#where.delete(id);
  }

  /** `bytes` more of a member's requests handled: acknowledged a step at a time, unless a holder is behind. */
  #acknowledge(holder: Holder, local: MemberId, bytes: number): void {
    let due = this.#toAcknowledge.get(holder);
    if (!due) this.#toAcknowledge.set(holder, (due = new Map()));
    const owed = (due.get(local) ?? 0) + bytes;
    if (owed < ACK_STEP_BYTES || this.#behind.size > 0) {
      due.set(local, owed);
      return;
    }
    due.delete(local);
    this.#post(holder, { acked: local, bytes: owed });
  }

  /** Every holder has caught up: everything handled is acknowledged, and the held senders are read again. */
  #acknowledgeAll(): void {
    for (const [holder, due] of this.#toAcknowledge) {
      for (const [local, owed] of due) this.#post(holder, { acked: local, bytes: owed });
      due.clear();
    }
  }

  /** A delivery for `holder`, counted until it says it consumed it. */
  #deliver(holder: Holder, delivery: RoomDelivery & { readonly text: string }): void {
    this.#post(holder, delivery);
    const unconsumed = (this.#unconsumed.get(holder) ?? 0) + MESSAGE_BYTES + delivery.text.length;
    this.#unconsumed.set(holder, unconsumed);
    if (unconsumed > HOLDER_WINDOW_BYTES) this.#behind.add(holder);
  }

  #apply(deliveries: Delivery[]): void {
    for (const delivery of deliveries) {
      if ('to' in delivery) {
        const where = this.#where.get(delivery.to);
        if (where) this.#deliver(where.holder, { text: delivery.text, to: where.id });
        continue;
      }
      const except = this.#where.get(delivery.allBut);
      for (const [holder, held] of this.#held) {
        if (held.size === 0) continue;
        if (except?.holder !== holder) this.#deliver(holder, { text: delivery.text });
        else if (held.size > 1) this.#deliver(holder, { text: delivery.text, allBut: except.id });
      }
    }
  }
}
