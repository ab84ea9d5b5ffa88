/**
 * The accept guard of the labs that make their own system calls: what an accept that failed
 * means, and what to do about running out of descriptors, written once.
 *
 * Sorting the errno of accept4(2) (or of an io_uring ACCEPT completion):
 *   EAGAIN                      nobody is waiting: wait for the next one.
 *   EINTR, ACCEPT_RETRY_ERRORS  that one connection is gone (reset before we took it): accept the next.
 *   EMFILE, ENFILE, ENOBUFS,    out of descriptors or memory. Warned once per spell. With a spare
 *   ENOMEM                      descriptor (turnAway), the clients waiting are accepted with it and
 *                               closed at once, as libuv does for lab 04: each learns now that it will
 *                               not be served, instead of waiting in the queue for nothing. Otherwise
 *                               accepting pauses for ACCEPT_RETRY_MS: the connection stays queued, so
 *                               the listening socket stays readable, and retrying at once would spin
 *                               a core until something else closes a descriptor.
 *   EINVAL                      a blocking listener (lab 08) was shut down under a thread asleep
 *                               in accept(): nobody will come, 'empty'. Anything else: a bug, thrown.
 */

import { closeSync, openSync } from 'node:fs';
import type { Logger } from '../log.js';

type Libc = typeof import('../libc.js');

/** After accept fails for want of descriptors and no client could be turned away, accepting pauses this long. */
export const ACCEPT_RETRY_MS = 100;

/** Most clients one turn-away closes, so a flood of connects cannot hold the loop. */
const TURN_AWAY_AT_MOST = 1024;

/** What to do after a failed accept: accept again, wait for the next client, or pause until `pausedUntil`. */
export type AcceptVerdict = 'again' | 'empty' | 'paused';

export class AcceptGuard {
  readonly #libc: Libc;
  readonly #log: Logger;
  readonly #turnAway: boolean;
  /** The listening socket blocks (lab 08): accept() sleeps, and the clients it gives block too. */
  readonly #blocking: boolean;
  /** A turn-away on a blocking listener asks poll() first whether anyone waits: accept() would sleep. */
  readonly #pollFd: InstanceType<Libc['PollFd']>;
  /** A descriptor held in reserve for turning clients away when the process runs out (-1: none). */
  #spareFd: number;
  /** accept last failed for want of descriptors (warn once per spell, not every retry). */
  #starved = false;
  /** Accepting is paused until then (performance.now() ms); 0: it is not. */
  pausedUntil = 0;
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);

  /**
   * `turnAway` false: the kernel's queue is the only queue (lab 01), nobody is turned away.
   * `blocking`: the listening socket blocks (lab 08).
   */
  constructor(libc: Libc, log: Logger, turnAway: boolean, blocking = false) {
    this.#libc = libc;
    this.#log = log;
    this.#turnAway = turnAway;
    this.#blocking = blocking;
    this.#pollFd = new libc.PollFd();
    this.#spareFd = turnAway ? openSpare() : -1;
  }

  /**
   * accept4() on the listening socket: the client's descriptor and address, or the verdict on
   * why not (see `refused`). On a blocking listener it sleeps until a client comes, and the
   * client's descriptor blocks too.
   */
  accept(listenFd: number, now: number): { readonly fd: number; readonly peer: string } | 'empty' | 'paused' {
    const libc = this.#libc;
    for (;;) {
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = libc.accept4(listenFd, this.#peerAddress, this.#peerAddressLength, (this.#blocking ? 0 : libc.SOCK_NONBLOCK) | libc.SOCK_CLOEXEC);
      if (fd >= 0) {
        this.#starved = false;
        return { fd, peer: libc.formatSockaddrIn(this.#peerAddress) };
      }
      const verdict = this.refused(libc.errno(), listenFd, now);
      if (verdict !== 'again') return verdict;
    }
  }

  /** An accept on `listenFd` failed with `error` (an errno): what to do now. */
  refused(error: number, listenFd: number, now: number): AcceptVerdict {
    const libc = this.#libc;
    if (error === libc.EAGAIN || (this.#blocking && error === libc.EINVAL)) return 'empty';
    if (error === libc.EINTR || libc.ACCEPT_RETRY_ERRORS.has(error)) return 'again';
    if (error === libc.EMFILE || error === libc.ENFILE || error === libc.ENOBUFS || error === libc.ENOMEM) {
      const what = this.#turnAway ? 'turning clients away until descriptors free up' : `retrying every ${ACCEPT_RETRY_MS} ms`;
      if (!this.#starved) this.#log.warn(`accept: ${libc.errnoName(error)}; ${what}`);
      this.#starved = true;
      if ((error === libc.EMFILE || error === libc.ENFILE) && this.turnAwayAll(listenFd) > 0) return 'again';
      this.pausedUntil = now + ACCEPT_RETRY_MS;
      return 'paused';
    }
    throw libc.callError('accept4', error);
  }

  /** A client was accepted: the spell of running out is over. */
  accepted(): void {
    this.#starved = false;
  }

  /** True once a pause is over (and clears it): the lab accepts again. */
  resumes(now: number): boolean {
    if (this.pausedUntil === 0 || now < this.pausedUntil) return false;
    this.pausedUntil = 0;
    return true;
  }

  close(): void {
    if (this.#spareFd >= 0) closeSync(this.#spareFd);
    this.#spareFd = -1;
  }

  /**
   * Out of descriptors: give the spare one back, accept a client with it and close it at once,
   * then take the spare again; until nobody waits (accept4 on the non-blocking listening socket
   * says EAGAIN). Returns how many were turned away. Public for a lab whose own limit runs out
   * first (lab 08: the descriptors a new thread needs).
   */
  turnAwayAll(listenFd: number): number {
    const libc = this.#libc;
    let turnedAway = 0;
    while (this.#spareFd >= 0 && turnedAway < TURN_AWAY_AT_MOST) {
      // A blocking accept with nobody waiting would sleep, spare given back, until the next client.
      if (this.#blocking && !this.#someoneWaits(listenFd)) break;
      closeSync(this.#spareFd);
      this.#peerAddressLength[0] = this.#peerAddress.length;
      const fd = libc.accept4(listenFd, this.#peerAddress, this.#peerAddressLength, libc.SOCK_CLOEXEC);
      if (fd >= 0) libc.close(fd);
      this.#spareFd = openSpare();
      if (fd < 0) break;
      turnedAway++;
    }
    return turnedAway;
  }

  #someoneWaits(listenFd: number): boolean {
    this.#pollFd.set(listenFd, this.#libc.POLLIN);
    return this.#libc.poll(this.#pollFd.words, 1, 0) > 0;
  }
}

/** /dev/null, opened only to hold a descriptor number in reserve; -1 if even that fails. */
function openSpare(): number {
  try {
    return openSync('/dev/null', 'r');
  } catch {
    return -1;
  }
}
