/**
 * The two readiness mechanisms lab 05 can run on, behind one small contract, as redis's `ae.c`
 * swaps `ae_epoll.c` for `ae_select.c`: register a descriptor with what to watch for, change it,
 * remove it, and wait for the ready ones. The server's loop is the same over both; only the cost
 * of a wait differs, and that difference is the lesson.
 *
 *   - epoll: the kernel keeps the interest list. epoll_ctl() changes it one descriptor at a time,
 *     and epoll_wait() hands back only the descriptors that are ready: O(ready) per wake-up.
 *   - poll: the process keeps the list, an array of struct pollfd with one entry per open
 *     descriptor, and passes all of it to poll() on every call. The kernel checks every entry and
 *     we scan every entry for the ones it marked: O(open descriptors) per wake-up, idle or not.
 *
 * Each registration carries an id chosen by the server, and a wait reports ids, not descriptors:
 * epoll keeps the id in the 64-bit `data` field of the event (a C server would keep a pointer to
 * its connection there), poll beside its array.
 */

import { UserError } from '../../shared/errors.js';
import type { CopyMode } from '../../shared/file-send.js';
import type { Libc } from '../../shared/listener.js';

export type Mux = 'epoll' | 'poll' | 'select';
export const MUXES: readonly Mux[] = ['epoll', 'poll', 'select'];
export type Trigger = 'level' | 'edge' | 'oneshot';
export const TRIGGERS: readonly Trigger[] = ['level', 'edge', 'oneshot'];

/** Lab 05's own flags: the backend, how it reports readiness, and the two bugs it can show. */
export interface LoopOptions {
  readonly mux: Mux;
  readonly trigger: Trigger;
  /** False only with `--no-drain`: read once per wake-up even in edge mode (the bug, on purpose). */
  readonly drain: boolean;
  /** A file range: sendfile(2), or pread(2) and write(2) (`--copy`, shared/file-send.ts). */
  readonly copy: CopyMode;
  /**
   * False only with `--no-rearm`: in oneshot mode, a client is not re-armed (EPOLL_CTL_MOD) after
   * its event, so epoll never reports it again (the bug, on purpose).
   */
  readonly rearm?: boolean;
}

/**
 * The mechanism, as the server sees it. Interest and event masks are epoll's bits (EPOLLIN,
 * EPOLLOUT, EPOLLRDHUP, EPOLLET; EPOLLERR and EPOLLHUP come unasked); poll's bits have the same
 * values on Linux, so the poll backend passes them through.
 */
export interface Poller {
  readonly name: Mux;
  /** Why this backend cannot watch `fd` (its own limit, such as select's FD_SETSIZE), or undefined. */
  refusal(fd: number): string | undefined;
  add(fd: number, id: number, interest: number): void;
  modify(fd: number, id: number, interest: number): void;
  /** Before close(fd): a closed descriptor's number is soon reused by the next accept. */
  remove(fd: number, id: number): void;
  /**
   * Blocks for at most `timeoutMs` until something is ready. Returns how many registrations are
   * ready (0: timed out or interrupted by a signal); `readyId(i)` and `readyEvents(i)` say which
   * and what, until the next wait.
   */
  wait(timeoutMs: number): number;
  readyId(i: number): number;
  readyEvents(i: number): number;
  close(): void;
}

/** Why `mux` cannot run on this machine (one line), or undefined. */
export function pollerUnavailable(libc: Libc, mux: Mux): string | undefined {
  return mux === 'epoll' && !libc.epollEventLayout() ? `lab 05 knows struct epoll_event only on x64 and arm64, not ${process.arch} (try --mux poll)` : undefined;
}

/** The backend `mux`, as `ae.c` picks its one backend. */
export function openPoller(libc: Libc, mux: Mux): Poller {
  const layout = libc.epollEventLayout();
  if (mux === 'epoll' && layout) return new EpollPoller(libc, layout);
  if (mux === 'epoll') throw new UserError(pollerUnavailable(libc, mux)!);
  return mux === 'select' ? new SelectPoller(libc) : new PollPoller(libc);
}

/**
 * One descriptor's registration, as the loop asks for it: read it or not, write to it or not. The
 * bits are epoll's (EPOLLIN and EPOLLRDHUP to read, EPOLLOUT to write), with the trigger mode's
 * own (EPOLLET, EPOLLONESHOT) added here; an unchanged mask costs no epoll_ctl. With EPOLLONESHOT
 * each event disables the registration until the next EPOLL_CTL_MOD re-arms it (`fired`, then
 * `update`), and `--no-rearm` forgets that re-arm on purpose.
 */
export class Registration {
  readonly #poller: Poller;
  readonly #libc: Libc;
  readonly #fd: number;
  readonly #id: number;
  readonly #trigger: Trigger;
  readonly #rearm: boolean;
  /** What the poller watches for this descriptor now; -1 until it is added. */
  #mask = -1;
  /** Oneshot: false once an event was reported (epoll disabled the registration) until the next MOD. */
  #armed = true;

  constructor(poller: Poller, libc: Libc, fd: number, id: number, options: Pick<LoopOptions, 'trigger' | 'rearm'>) {
    this.#poller = poller;
    this.#libc = libc;
    this.#fd = fd;
    this.#id = id;
    this.#trigger = options.trigger;
    this.#rearm = options.rearm !== false;
  }

  /**
   * Adds or changes the registration. The kernel re-checks readiness on MOD, so a client paused
   * with bytes waiting is reported again once EPOLLIN is back, in edge mode too.
   */
  update(reading: boolean, writing: boolean): void {
    const libc = this.#libc;
    let mask = (reading ? libc.EPOLLIN | libc.EPOLLRDHUP : 0) | (writing ? libc.EPOLLOUT : 0);
    if (this.#trigger === 'oneshot') mask = (mask | libc.EPOLLONESHOT) >>> 0;
    else if (this.#trigger === 'edge') mask = (mask | libc.EPOLLET) >>> 0;
    if (this.#mask < 0) this.#poller.add(this.#fd, this.#id, mask);
    // Oneshot: after an event the registration is disabled whatever its mask; only MOD re-arms it.
    else if (mask === this.#mask && this.#armed) return;
    else if (!this.#armed && !this.#rearm) return; // --no-rearm: THE BUG, on purpose
    else this.#poller.modify(this.#fd, this.#id, mask);
    this.#mask = mask;
    this.#armed = true;
  }

  /** An event was reported for it. */
  fired(): void {
    if (this.#trigger === 'oneshot') this.#armed = false;
  }

  /** Before close(fd): a closed descriptor's number is soon reused by the next accept. */
  remove(): void {
    this.#poller.remove(this.#fd, this.#id);
  }
}

/** Most events one epoll_wait() returns; more stay ready for the next call. */
const MAX_EVENTS = 256;

const TWO_32 = 2 ** 32;

export class EpollPoller implements Poller {
  readonly name = 'epoll';
  readonly #libc: Libc;
  readonly #epfd: number;
  readonly #size: number;
  readonly #dataOffset: number;
  /** One struct epoll_event for epoll_ctl(), and the array epoll_wait() fills: reused, never reallocated. */
  readonly #event: Uint8Array;
  readonly #eventView: DataView;
  readonly #ready: Uint8Array;
  readonly #readyView: DataView;

  constructor(libc: Libc, layout: { readonly size: number; readonly dataOffset: number }) {
    this.#libc = libc;
    this.#size = layout.size;
    this.#dataOffset = layout.dataOffset;
    // CLOEXEC: a child process started by this one must not inherit the epoll instance.
    this.#epfd = libc.epoll_create1(libc.EPOLL_CLOEXEC);
    if (this.#epfd < 0) throw libc.callError('epoll_create1', libc.errno());
    this.#event = new Uint8Array(layout.size);
    this.#eventView = new DataView(this.#event.buffer);
    this.#ready = new Uint8Array(layout.size * MAX_EVENTS);
    this.#readyView = new DataView(this.#ready.buffer);
  }

  refusal(): undefined {
    return undefined;
  }

  add(fd: number, id: number, interest: number): void {
    this.#ctl(this.#libc.EPOLL_CTL_ADD, fd, id, interest);
  }

  modify(fd: number, id: number, interest: number): void {
    this.#ctl(this.#libc.EPOLL_CTL_MOD, fd, id, interest);
  }

  remove(fd: number): void {
    // Linux ignores the event for DEL (kernels before 2.6.9 wanted a non-null pointer).
    if (this.#libc.epoll_ctl(this.#epfd, this.#libc.EPOLL_CTL_DEL, fd, this.#event) < 0) {
      throw this.#libc.callError('epoll_ctl(DEL)', this.#libc.errno());
    }
  }

  wait(timeoutMs: number): number {
    const n = this.#libc.epoll_wait(this.#epfd, this.#ready, MAX_EVENTS, timeoutMs);
    if (n >= 0) return n;
    const error = this.#libc.errno();
    if (error === this.#libc.EINTR) return 0; // most likely our Ctrl-C: the caller takes its turn
    throw this.#libc.callError('epoll_wait', error);
  }

  readyEvents(i: number): number {
    // Both architectures this file knows are little-endian, like the struct.
    return this.#readyView.getUint32(i * this.#size, true);
  }

  readyId(i: number): number {
    const at = i * this.#size + this.#dataOffset;
    return this.#readyView.getUint32(at, true) + this.#readyView.getUint32(at + 4, true) * TWO_32;
  }

  close(): void {
    this.#libc.close(this.#epfd);
  }

  #ctl(op: number, fd: number, id: number, interest: number): void {
    const view = this.#eventView;
    view.setUint32(0, interest >>> 0, true);
    view.setUint32(this.#dataOffset, id % TWO_32, true);
    view.setUint32(this.#dataOffset + 4, Math.floor(id / TWO_32), true);
    if (this.#libc.epoll_ctl(this.#epfd, op, fd, this.#event) < 0) {
      throw this.#libc.callError(op === this.#libc.EPOLL_CTL_ADD ? 'epoll_ctl(ADD)' : 'epoll_ctl(MOD)', this.#libc.errno());
    }
  }
}

/** Starting room in the pollfd array; it doubles when full. */
const INITIAL_SLOTS = 64;

export class PollPoller implements Poller {
  readonly name = 'poll';
  readonly #libc: Libc;
  /** struct pollfd[] { int fd; short events; short revents; }: as Int32 pairs, and as Int16 quads. */
  #words = new Int32Array(2 * INITIAL_SLOTS);
  #halves = new Int16Array(this.#words.buffer);
  /** The id registered in each slot, and each id's slot: removal moves the last slot into the hole. */
  #ids: number[] = [];
  readonly #slotOf = new Map<number, number>();
  #count = 0;
  readonly #readyIds: number[] = [];
  readonly #readyEvents: number[] = [];

  constructor(libc: Libc) {
    this.#libc = libc;
  }

  refusal(): undefined {
    return undefined;
  }

  add(fd: number, id: number, interest: number): void {
    if (this.#count * 2 === this.#words.length) this.#grow();
    const slot = this.#count++;
    this.#words[2 * slot] = fd;
    this.#ids[slot] = id;
    this.#slotOf.set(id, slot);
    this.modify(fd, id, interest);
  }

  modify(_fd: number, id: number, interest: number): void {
    const slot = this.#slotOf.get(id)!;
    this.#halves[4 * slot + 2] = interest;
    this.#halves[4 * slot + 3] = 0;
  }

  remove(_fd: number, id: number): void {
    const slot = this.#slotOf.get(id)!;
    const last = --this.#count;
    this.#slotOf.delete(id);
    if (slot === last) return;
    this.#words[2 * slot] = this.#words[2 * last]!;
    this.#words[2 * slot + 1] = this.#words[2 * last + 1]!;
    const moved = this.#ids[last]!;
    this.#ids[slot] = moved;
    this.#slotOf.set(moved, slot);
  }

  wait(timeoutMs: number): number {
    this.#readyIds.length = 0;
    this.#readyEvents.length = 0;
    // The whole array goes to the kernel on every call, and the kernel checks every entry.
    const n = this.#libc.poll(this.#words, this.#count, timeoutMs);
    if (n < 0) {
      const error = this.#libc.errno();
      if (error === this.#libc.EINTR) return 0;
      throw this.#libc.callError('poll', error);
    }
    // poll() says how many entries it marked, not which: look at each entry in turn until all of
    // them are found (the last one may sit at the very end).
    for (let slot = 0; slot < this.#count && this.#readyIds.length < n; slot++) {
      const revents = this.#halves[4 * slot + 3]!;
      if (revents === 0) continue;
      this.#readyIds.push(this.#ids[slot]!);
      this.#readyEvents.push(revents & 0xffff);
    }
    return this.#readyIds.length;
  }

  readyId(i: number): number {
    return this.#readyIds[i]!;
  }

  readyEvents(i: number): number {
    return this.#readyEvents[i]!;
  }

  close(): void {}

  #grow(): void {
    const words = new Int32Array(this.#words.length * 2);
    words.set(this.#words);
    this.#words = words;
    this.#halves = new Int16Array(words.buffer);
  }
}

/**
 * select(2), the oldest of the three: two bitmaps (fd_set) of FD_SETSIZE (1024) bits, one for
 * "tell me when readable", one for "writable", rebuilt and passed in on every call, rewritten by
 * the kernel to say which are ready, then scanned bit by bit. O(highest descriptor) per wake-up,
 * and a hard ceiling: a descriptor numbered FD_SETSIZE or more has no bit. Writing its bit anyway
 * is the classic memory corruption (FD_SET past the end of the struct): this backend refuses such a
 * client (`refusal`, which the server asks before it registers one), and add() throws rather
 * than write out of bounds.
 */
export class SelectPoller implements Poller {
  readonly name = 'select';
  readonly #libc: Libc;
  readonly #readSet: Uint32Array;
  readonly #writeSet: Uint32Array;
  /** struct timeval { long tv_sec; long tv_usec; } on 64-bit Linux. */
  readonly #timeout = new BigInt64Array(2);
  /** What each registered descriptor watches, and the id it reports. */
  readonly #interest = new Map<number, { id: number; interest: number }>();
  readonly #readyIds: number[] = [];
  readonly #readyEvents: number[] = [];

  constructor(libc: Libc) {
    this.#libc = libc;
    this.#readSet = new Uint32Array(libc.FD_SETSIZE / 32);
    this.#writeSet = new Uint32Array(libc.FD_SETSIZE / 32);
  }

  /** select(2) has no bit for this descriptor: refused, never written past the end of an fd_set. */
  refusal(fd: number): string | undefined {
    const size = this.#libc.FD_SETSIZE;
    return fd < size ? undefined : `its descriptor ${fd} is at or over select()'s FD_SETSIZE (${size}: descriptors 0-${size - 1} only)`;
  }

  add(fd: number, id: number, interest: number): void {
    if (fd < 0 || fd >= this.#libc.FD_SETSIZE) throw new Error(`select: descriptor ${fd} does not fit an fd_set of ${this.#libc.FD_SETSIZE} bits`);
    this.#interest.set(fd, { id, interest });
  }

  modify(fd: number, id: number, interest: number): void {
    this.#interest.set(fd, { id, interest });
  }

  remove(fd: number): void {
    this.#interest.delete(fd);
  }

  wait(timeoutMs: number): number {
    const libc = this.#libc;
    this.#readyIds.length = 0;
    this.#readyEvents.length = 0;
    // Both sets are rebuilt on every call: the kernel overwrote them with the ready ones.
    this.#readSet.fill(0);
    this.#writeSet.fill(0);
    let highest = -1;
    for (const [fd, { interest }] of this.#interest) {
      const bit = 1 << (fd & 31);
      if (interest & (libc.EPOLLIN | libc.EPOLLRDHUP)) this.#readSet[fd >>> 5]! |= bit;
      if (interest & libc.EPOLLOUT) this.#writeSet[fd >>> 5]! |= bit;
      if (fd > highest) highest = fd;
    }
    this.#timeout[0] = BigInt(Math.floor(timeoutMs / 1000));
    this.#timeout[1] = BigInt((timeoutMs % 1000) * 1000);
    const n = libc.select(highest + 1, this.#readSet, this.#writeSet, null, this.#timeout);
    if (n < 0) {
      const error = libc.errno();
      if (error === libc.EINTR) return 0;
      throw libc.callError('select', error);
    }
    if (n === 0) return 0;
    for (const [fd, { id }] of this.#interest) {
      const bit = 1 << (fd & 31);
      // Readable covers a pending error and the peer's FIN too: the read that follows says which.
      const events = (this.#readSet[fd >>> 5]! & bit ? libc.EPOLLIN : 0) | (this.#writeSet[fd >>> 5]! & bit ? libc.EPOLLOUT : 0);
      if (events === 0) continue;
      this.#readyIds.push(id);
      this.#readyEvents.push(events);
    }
    return this.#readyIds.length;
  }

  readyId(i: number): number {
    return this.#readyIds[i]!;
  }

  readyEvents(i: number): number {
    return this.#readyEvents[i]!;
  }

  close(): void {}
}
