/**
 * Lab 08's chat room: state shared by threads, and the hardest lesson of this model.
 *
 * Every lab runs the same Room (shared/room.ts); here its members live in shared memory
 * (table.ts), because each member is served by a thread of its own and every thread must see
 * them all. One lock, built on Atomics, guards them: a thread takes it to join, speak or leave.
 *
 * And nobody else writes for a member: the sender's own thread writes the line to every other
 * member's socket itself, with blocking write() calls, while it holds the lock (so every member
 * hears the lines in one order). That is head-of-line blocking: one member that never reads
 * fills its socket's buffers, and the next write to it sleeps, holding up the sender and, through
 * the lock, the whole room. Each member's socket has a send timeout (SO_SNDTIMEO,
 * MEMBER_SEND_TIMEOUT_MS) that bounds the sleep: a write that moves nothing within it cuts that
 * member off. The sender marks it cut, shuts its socket down (which wakes its own thread asleep in
 * read(), to close it), and the room hears that it left, after the line every other member heard.
 * An event loop has no such stall: it queues per member and moves on (shared/chat.ts).
 */

import { type ChatAction, type Delivery, type Member, type MemberId, type MemberTable, Room, type RoomPort } from '../../shared/room.js';
import { LOCK, NAME_BYTES, type ThreadTable } from './table.js';

type Libc = typeof import('../../shared/libc.js');

/**
 * How long a write to a member may move nothing before the member is cut off. The sender and,
 * through the lock, the whole room wait this long for one member that stopped reading: short, as
 * a stall every member feels; long against a reader that is only slow (its kernel buffers hold
 * megabytes, and a reader drains them in milliseconds).
 */
export const MEMBER_SEND_TIMEOUT_MS = 1000;

/** Why a member was cut off, in its disconnect line. */
export const CUT_OFF_REASON = `too slow: a write to it moved nothing for ${MEMBER_SEND_TIMEOUT_MS / 1000} s`;

/** The member id of a slot (room ids count from 1). */
const idOf = (slot: number): MemberId => slot + 1;
const slotOf = (id: MemberId): number => id - 1;

/** The Room's members, in the shared table (used only under the lock). */
class SharedMembers implements MemberTable {
  readonly #table: ThreadTable;

  constructor(table: ThreadTable) {
    this.#table = table;
  }

  get size(): number {
    return this.#table.memberCount;
  }

  nameOf(id: MemberId): string | undefined {
    return this.#table.nameOf(slotOf(id));
  }

  holderOf(name: string): MemberId | undefined {
    const lower = name.toLowerCase();
    const slot = this.#table.members().find((member) => this.#table.nameOf(member)!.toLowerCase() === lower);
    return slot === undefined ? undefined : idOf(slot);
  }

  set(id: MemberId, name: string): void {
    if (Buffer.byteLength(name, 'latin1') > NAME_BYTES) throw new Error(`name over ${NAME_BYTES} bytes: ${name}`);
    this.#table.setName(slotOf(id), name);
  }

  delete(id: MemberId): void {
    this.#table.removeMember(slotOf(id));
  }

  names(): string[] {
    return this.#table.members().map((slot) => this.#table.nameOf(slot)!);
  }

  countJoin(): number {
    return this.#table.countJoin();
  }
}

/** One thread's door to the room: the connection it serves now, and the lock. */
export class SharedRoom implements RoomPort {
  readonly #libc: Libc;
  readonly #table: ThreadTable;
  readonly #words: Int32Array;
  readonly #room: Room;
  /** The connection this thread serves: its slot and its conversation's member, once joined. */
  #slot = -1;
  #member: Member | undefined;
  /** Inside the lock: what a delivery set off (this member leaving) runs after the step in progress. */
  #inside = false;
  readonly #after: (() => void)[] = [];
  /** Members cut off during a fan-out: they leave after it, so everyone heard the line first. */
  readonly #cut: number[] = [];
  readonly #timeout = new BigInt64Array([BigInt(MEMBER_SEND_TIMEOUT_MS / 1000), BigInt((MEMBER_SEND_TIMEOUT_MS % 1000) * 1000)]);

  constructor(libc: Libc, table: ThreadTable) {
    this.#libc = libc;
    this.#table = table;
    this.#words = table.words;
    this.#room = new Room(new SharedMembers(table));
  }

  /** The connection in `slot` is this thread's now (a thread serves one at a time). */
  serve(slot: number): void {
    this.#slot = slot;
    this.#member = undefined;
  }

  /** This thread's connection is in the room: its socket has the room's send timeout. */
  get joined(): boolean {
    return this.#member !== undefined;
  }

  /** True once another member's thread has cut this thread's member off. */
  get cutOff(): boolean {
    return this.#slot >= 0 && this.#table.isCut(this.#slot);
  }

  join(member: Member): MemberId {
    const slot = this.#slot;
    this.#member = member;
    // Every writer to this socket, this thread and every other member's, is bounded from now on.
    this.#libc.setsockopt(this.#table.fd(slot), this.#libc.SOL_SOCKET, this.#libc.SO_SNDTIMEO, this.#timeout, 16);
    this.#locked(() => this.#deliver(this.#room.join(idOf(slot))));
    return idOf(slot);
  }

  act(id: MemberId, action: ChatAction): void {
    this.#locked(() => this.#deliver(this.#room.act(id, action)));
  }

  leave(id: MemberId, why?: string, announce = true): void {
    this.#locked(() => this.#deliver(this.#room.leave(id, why, announce)));
    if (id === idOf(this.#slot)) this.#member = undefined;
  }

  /** Runs `step` holding the lock; a step asked for while it is held (by a delivery) runs after it, still holding it. */
  #locked(step: () => void): void {
    if (this.#inside) {
      this.#after.push(step);
      return;
    }
    this.#lock();
    this.#inside = true;
    try {
      step();
      for (;;) {
        const next = this.#after.shift();
        if (next) {
          next();
          continue;
        }
        const cut = this.#cut.shift();
        if (cut === undefined) break;
        this.#deliver(this.#room.leave(idOf(cut), 'too slow'));
      }
    } finally {
      this.#inside = false;
      this.#unlock();
    }
  }

  /** Each delivery's bytes, to this thread's member through its connection, to the others straight onto their sockets. */
  #deliver(deliveries: Delivery[]): void {
    for (const delivery of deliveries) {
      const bytes = Buffer.from(delivery.text, 'latin1');
      const to = 'to' in delivery ? [slotOf(delivery.to)] : this.#table.members().filter((slot) => slot !== slotOf(delivery.allBut));
      for (const slot of to) {
        if (slot === this.#slot) this.#member?.deliver(bytes);
        else this.#writeTo(slot, bytes);
      }
    }
  }

  /**
   * Blocking writes onto another member's socket until all of `bytes` is taken. One that moves
   * nothing within the socket's send timeout (EAGAIN) cuts the member off: the rest of the line
   * is not sent, and its thread, woken by the shutdown, closes it.
   */
  #writeTo(slot: number, bytes: Buffer): void {
    const libc = this.#libc;
    const table = this.#table;
    if (table.isCut(slot)) return;
    const fd = table.fd(slot);
    let offset = 0;
    while (offset < bytes.length) {
      const n = libc.write(fd, offset === 0 ? bytes : bytes.subarray(offset), bytes.length - offset);
      if (n > 0) {
        offset += n;
        table.wroteTo(slot, n, performance.now());
        continue;
      }
      const error = libc.errno();
      if (error === libc.EINTR) continue;
      if (error === libc.EAGAIN) {
        table.cut(slot);
        this.#cut.push(slot);
        libc.shutdown(fd, libc.SHUT_RDWR);
      }
      // Otherwise (EPIPE, ECONNRESET) its client is gone: its own thread sees it and leaves.
      return;
    }
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#words, LOCK, 0, 1) !== 0) Atomics.wait(this.#words, LOCK, 1);
  }

  #unlock(): void {
    Atomics.store(this.#words, LOCK, 0);
    Atomics.notify(this.#words, LOCK, 1);
  }
}
