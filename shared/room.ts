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

/** From a holder of members to the hub. `id` is the holder's own number for the member. */
export type RoomRequest =
  | { readonly type: 'join'; readonly id: MemberId }
  | { readonly type: 'act'; readonly id: MemberId; readonly action: ChatAction }
  | { readonly type: 'leave'; readonly id: MemberId; readonly why?: string; readonly announce: boolean };

/** From the hub to a holder: `text` for its member `to`, or for all its members but `allBut` (or all). */
export interface RoomDelivery {
  readonly text: string;
  readonly to?: MemberId;
  readonly allBut?: MemberId;
}

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
    if (this.#holders.members.has(id) || this.#joining.has(id)) this.#send({ type: 'act', id, action });
  }

  leave(id: MemberId, why?: string, announce = true): void {
    if (!this.#holders.members.delete(id) && !this.#joining.delete(id)) return;
    this.#send(why === undefined ? { type: 'leave', id, announce } : { type: 'leave', id, why, announce });
  }

  /** A delivery from the hub, for the members held here. */
  receive(delivery: RoomDelivery): void {
    const newcomer = delivery.to === undefined ? undefined : this.#joining.get(delivery.to);
    if (newcomer) {
      this.#joining.delete(delivery.to!);
      this.#holders.members.set(delivery.to!, newcomer);
    }
    this.#holders.fanOut(delivery.text, delivery.to, delivery.allBut);
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
  #nextId = 1;

  constructor(post: (holder: Holder, delivery: RoomDelivery) => void) {
    this.#post = post;
  }

  get size(): number {
    return this.#room.size;
  }

  handle(holder: Holder, request: RoomRequest): void {
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
    } else {
      this.#forget(holder, request.id, id);
      this.#apply(this.#room.leave(id, request.why, request.announce));
    }
  }

  /** The holder is gone (lab 02: a child exited): each of its members leaves. */
  detach(holder: Holder, why?: string): void {
    const held = this.#held.get(holder);
    this.#held.delete(holder);
    if (!held) return;
    for (const id of held.values()) {
      this.#where.delete(id);
      this.#apply(this.#room.leave(id, why));
    }
  }

  #forget(holder: Holder, local: MemberId, id: MemberId): void {
    this.#held.get(holder)?.delete(local);
    this.#where.delete(id);
  }

  #apply(deliveries: Delivery[]): void {
    for (const delivery of deliveries) {
      if ('to' in delivery) {
        const where = this.#where.get(delivery.to);
        if (where) this.#post(where.holder, { text: delivery.text, to: where.id });
        continue;
      }
      const except = this.#where.get(delivery.allBut);
      for (const [holder, held] of this.#held) {
        if (held.size === 0) continue;
        if (except?.holder !== holder) this.#post(holder, { text: delivery.text });
        else if (held.size > 1) this.#post(holder, { text: delivery.text, allBut: except.id });
      }
    }
  }
}
