/**
 * Lab 08's shared memory: what its threads know of each other, in one SharedArrayBuffer every
 * thread maps. A worker thread has its own JavaScript heap, so an object cannot be shared; words
 * in shared memory can, read and written with Atomics.
 *
 *   control   the server's state (running, stopping, forced), the room's lock and its counters;
 *   slots     one per connection the server may hold (--max-conns): its descriptor, whether a
 *             shutdown may end it at once, and, for a chat member, its name and join order.
 *
 * The slots are the connection cap (a client finds none free: it is closed at once) and the list
 * the main thread walks at shutdown: a thread asleep in read() cannot be told anything, so the
 * main thread wakes it with shutdown(2) on its descriptor (server.ts says why not close()).
 */

type Libc = typeof import('../../shared/libc.js');

/** The server's state, in control[STATE]. */
export const RUNNING = 0;
/** SIGTERM: each connection finishes what it is doing (its conversation's stop()). */
export const STOPPING = 1;
/** The shutdown deadline: every connection is closed now. */
export const FORCED = 2;

const STATE = 0;
/** The room's lock: 0 free, 1 held (room.ts). */
export const LOCK = 1;
const JOINS = 2;
const JOIN_ORDER = 3;
const MEMBERS = 4;
const SERIALS = 5;
/** Threads the main thread has started that are not running yet (their descriptors still to open). */
const STARTING = 6;
const CONTROL_WORDS = 7;

// A slot's words.
/** FREE, OPEN (its thread serves it), BUSY (the main thread is shutting it down), CLOSING. */
const USE = 0;
const FD = 1;
/** 1 while its thread sleeps in read() and a shutdown would end the connection at once. */
const ENDS_ON_STOP = 2;
/** 1 once another member's thread has cut it off (room.ts). */
const CUT = 3;
/** Join order of a chat member (0: not in the room). */
const JOINED = 4;
const NAME_LENGTH = 5;
/** When another member's thread last wrote to it, ms after `epoch`: bytes moving, for its idle limit. */
const WRITTEN_AT = 6;
/** Which connection holds the slot: a number no other connection gets (control[SERIALS] counts them). */
const SERIAL = 7;
/** The threadId of the thread that claimed it (a pool thread; the acceptor, for a connection thread). */
const OWNER = 8;
const SLOT_WORDS = 9;

const FREE = 0;
const OPEN = 1;
const BUSY = 2;
const CLOSING = 3;

/** Longest chat name, in bytes (shared/chat.ts MAX_NICK_BYTES; `userN` names are shorter). */
export const NAME_BYTES = 32;

/** What a new thread needs to map the same table. */
export interface TableMemory {
  readonly words: SharedArrayBuffer;
  readonly names: SharedArrayBuffer;
  /** Bytes other members' threads wrote to each slot, for its disconnect line. */
  readonly written: SharedArrayBuffer;
  /** performance.timeOrigin of the thread that made it: every thread has its own clock origin. */
  readonly epoch: number;
}

export class ThreadTable {
  readonly slots: number;
  readonly memory: TableMemory;
  readonly #words: Int32Array;
  readonly #names: Uint8Array;
  readonly #written: BigInt64Array;
  /** This thread's performance.now() at the table's epoch. */
  readonly #offset: number;

  /** A new table with `slots` slots, or this thread's view of one another thread made. */
  constructor(slots: number | TableMemory) {
    this.memory =
      typeof slots === 'number'
        ? {
            words: new SharedArrayBuffer((CONTROL_WORDS + slots * SLOT_WORDS) * Int32Array.BYTES_PER_ELEMENT),
            names: new SharedArrayBuffer(slots * NAME_BYTES),
            written: new SharedArrayBuffer(slots * BigInt64Array.BYTES_PER_ELEMENT),
            epoch: performance.timeOrigin,
          }
        : slots;
    this.#words = new Int32Array(this.memory.words);
    this.#names = new Uint8Array(this.memory.names);
    this.#written = new BigInt64Array(this.memory.written);
    this.slots = this.#written.length;
    this.#offset = this.memory.epoch - performance.timeOrigin;
  }

  get words(): Int32Array {
    return this.#words;
  }

  get state(): number {
    return Atomics.load(this.#words, STATE);
  }

  set state(state: number) {
    Atomics.store(this.#words, STATE, state);
  }

  #at(slot: number, word: number): number {
    return CONTROL_WORDS + slot * SLOT_WORDS + word;
  }

  starting(change?: number): number {
    return change === undefined ? Atomics.load(this.#words, STARTING) : Atomics.add(this.#words, STARTING, change) + change;
  }

  // --- Connections -------------------------------------------------------------------------

  /** A free slot for the client on `fd`, now open; undefined when all are taken (--max-conns). */
  claim(fd: number, owner: number): number | undefined {
    for (let slot = 0; slot < this.slots; slot++) {
      if (Atomics.compareExchange(this.#words, this.#at(slot, USE), FREE, BUSY) !== FREE) continue;
      this.#words[this.#at(slot, FD)] = fd;
      this.#words[this.#at(slot, ENDS_ON_STOP)] = 0;
      this.#words[this.#at(slot, CUT)] = 0;
      this.#words[this.#at(slot, WRITTEN_AT)] = 0;
      this.#written[slot] = 0n;
      this.#words[this.#at(slot, SERIAL)] = Atomics.add(this.#words, SERIALS, 1) + 1;
      this.#words[this.#at(slot, OWNER)] = owner;
      Atomics.store(this.#words, this.#at(slot, USE), OPEN);
      return slot;
    }
    return undefined;
  }

  fd(slot: number): number {
    return this.#words[this.#at(slot, FD)]!;
  }

  open(slot: number): boolean {
    return Atomics.load(this.#words, this.#at(slot, USE)) !== FREE;
  }

  /**
   * Closes the slot's descriptor and frees the slot, by its own thread or by the main thread for
   * a thread that never started. Never while the main thread is shutting the descriptor down:
   * once closed, its number may be given to a new descriptor at once, which a late shutdown(2)
   * would hit.
   */
  close(slot: number, libc: Libc): void {
    const use = this.#at(slot, USE);
    while (Atomics.compareExchange(this.#words, use, OPEN, CLOSING) !== OPEN) {
      if (Atomics.load(this.#words, use) === FREE) return;
      // The main thread holds it for the length of one shutdown(2) call.
      Atomics.wait(this.#words, use, BUSY, 1);
    }
    libc.close(this.fd(slot));
    Atomics.store(this.#words, use, FREE);
  }

  serial(slot: number): number {
    return Atomics.load(this.#words, this.#at(slot, SERIAL));
  }

  /**
   * The main thread, after a thread ended: closes what it left open (a thread that failed to
   * start, or died): the slot holding connection `serial`, or every slot `owner` claimed.
   */
  abandon(libc: Libc, which: { readonly slot: number; readonly serial: number } | { readonly owner: number }): void {
    for (let slot = 0; slot < this.slots; slot++) {
      if (!this.open(slot)) continue;
      const left = 'owner' in which ? this.#words[this.#at(slot, OWNER)] === which.owner : slot === which.slot && this.serial(slot) === which.serial;
      if (left) this.close(slot, libc);
    }
  }

  /** Its thread is going to sleep in read(): whether a shutdown would end the connection at once. */
  endsOnStop(slot: number, ends: boolean): void {
    Atomics.store(this.#words, this.#at(slot, ENDS_ON_STOP), ends ? 1 : 0);
  }

  /**
   * The main thread: shutdown(2) on every open slot's descriptor (`which` says whose), waking a
   * thread asleep on it. `how` SHUT_RD: its read() returns 0, and it may still write (a goodbye);
   * SHUT_RDWR: its write() fails too.
   */
  wake(libc: Libc, how: number, which: 'ends-on-stop' | 'all'): void {
    for (let slot = 0; slot < this.slots; slot++) {
      if (which === 'ends-on-stop' && Atomics.load(this.#words, this.#at(slot, ENDS_ON_STOP)) === 0) continue;
      const use = this.#at(slot, USE);
      if (Atomics.compareExchange(this.#words, use, OPEN, BUSY) !== OPEN) continue;
      libc.shutdown(this.fd(slot), how);
      Atomics.store(this.#words, use, OPEN);
      Atomics.notify(this.#words, use);
    }
  }

  // --- The room's members (room.ts, under the room's lock) -----------------------------------

  /** The slots of members in the room, in join order. */
  members(): number[] {
    const found: number[] = [];
    for (let slot = 0; slot < this.slots; slot++) if (this.#words[this.#at(slot, JOINED)]! > 0) found.push(slot);
    return found.sort((a, b) => this.#words[this.#at(a, JOINED)]! - this.#words[this.#at(b, JOINED)]!);
  }

  get memberCount(): number {
    return this.#words[MEMBERS]!;
  }

  nameOf(slot: number): string | undefined {
    const length = this.#words[this.#at(slot, NAME_LENGTH)]!;
    if (this.#words[this.#at(slot, JOINED)] === 0) return undefined;
    return Buffer.from(this.#names.buffer, slot * NAME_BYTES, length).toString('latin1');
  }

  /** Names the slot's member; one not yet in the room joins at the end of the order. */
  setName(slot: number, name: string): void {
    const joined = this.#at(slot, JOINED);
    if (this.#words[joined] === 0) {
      this.#words[joined] = ++this.#words[JOIN_ORDER]!;
      this.#words[MEMBERS]!++;
    }
    const length = Buffer.from(this.#names.buffer, slot * NAME_BYTES, NAME_BYTES).write(name, 'latin1');
    this.#words[this.#at(slot, NAME_LENGTH)] = length;
  }

  removeMember(slot: number): void {
    const joined = this.#at(slot, JOINED);
    if (this.#words[joined] === 0) return;
    this.#words[joined] = 0;
    this.#words[MEMBERS]!--;
  }

  countJoin(): number {
    return ++this.#words[JOINS]!;
  }

  /** Another member's thread cut this one off: it writes to it no more, and its own thread closes it. */
  cut(slot: number): void {
    Atomics.store(this.#words, this.#at(slot, CUT), 1);
  }

  isCut(slot: number): boolean {
    return Atomics.load(this.#words, this.#at(slot, CUT)) === 1;
  }

  /** Another member's thread wrote `bytes` to the slot's socket at `now` (its own clock). */
  wroteTo(slot: number, bytes: number, now: number): void {
    Atomics.add(this.#written, slot, BigInt(bytes));
    Atomics.store(this.#words, this.#at(slot, WRITTEN_AT), Math.max(1, Math.round(now - this.#offset)));
  }

  /** What other members' threads wrote to the slot: bytes, and when last (this thread's clock; -1: never). */
  writtenTo(slot: number): { readonly bytes: number; readonly at: number } {
    const at = Atomics.load(this.#words, this.#at(slot, WRITTEN_AT));
    return { bytes: Number(Atomics.load(this.#written, slot)), at: at === 0 ? -1 : at + this.#offset };
  }
}
