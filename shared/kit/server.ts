/**
 * The house of the labs that make their own system calls (01, 05, 07, and 08 next): what such a
 * server keeps besides its mechanism, written once, so that each lab's server.ts holds its loop
 * and its mechanism and little else, and two labs' diff is their model.
 *
 *   the table    every open connection by id (ids count from 1; 0 is the listening socket's),
 *                `admit` (--max-conns, a backend's refusal, TCP_NODELAY, the connect line), and
 *                `forget` (the disconnect line);
 *   the shutdown `stopAccepting`, `finishAll` (each conversation finishes what it is doing) and
 *                `force` (every client closed now), the three steps gracefulClose calls;
 *   the sweep    every SWEEP_MS, each connection's time limits (shared/rules.ts), instead of a
 *                timer per limit: idle, lifetime, header, a conversation's last words;
 *   the turn     after a wake-up, Node's own event loop gets its turn when the wait found nothing
 *                or TURN_EVERY_MS has passed (shared/turn.ts), and a paused accept resumes;
 *   the guard    the accept guard (kit/accept.ts).
 *
 * A lab extends it with its connection type (a HandConnection with the mechanism's own fields)
 * and implements the Mechanism: transmit, closeWhenSent, abandon.
 */

import type { ServerOptions } from '../lab.js';
import type { CopyMode } from '../file-send.js';
import { ON } from '../listener.js';
import { LocalRoom, type RoomPort } from '../room.js';
import { CLOSED, limitReached } from '../rules.js';
import { EventLoopTurns } from '../turn.js';
import { AcceptGuard } from './accept.js';
import { type Admission, HandConnection, type Mechanism } from './connection.js';

type Libc = typeof import('../libc.js');

/**
 * How often every connection's time limits are checked. Idle, lifetime and header limits are
 * whole seconds, so 100 ms late is fine; checking on every wake-up would make each one O(open
 * connections), the very cost epoll saves. (A timer wheel would make it O(expiring).)
 */
export const SWEEP_MS = 100;

/** The listening socket's id (a poller registration, a ring's user_data); connections count from 1. */
export const LISTENER_ID = 0;

/** What every by-hand server starts from (kit/start.ts makes it). */
export interface Ground<Extra extends object = object> {
  readonly libc: Libc;
  readonly listenFd: number;
  readonly options: ServerOptions & Extra;
  /** False: the kernel's accept queue is the only queue, nobody is turned away (lab 01). */
  readonly turnAway: boolean;
  /** The listening socket blocks: accept() sleeps until a client comes (lab 08's threads). */
  readonly blocking?: boolean;
}

export abstract class HandServer<C extends HandConnection, Extra extends object = object> implements Mechanism {
  readonly libc: Libc;
  readonly options: ServerOptions & Extra & { readonly copy?: CopyMode };
  /** The chat room its conversations join: by default a set of connections in this one thread, as in lab 04. */
  readonly room: RoomPort;
  protected readonly connections = new Map<number, C>();
  protected readonly turns: EventLoopTurns;
  protected readonly guard: AcceptGuard;
  protected listenFd: number;
  protected accepting = true;
  #nextId = LISTENER_ID + 1;
  #lastSweepAt = 0;
  #forced = false;
  readonly #peerAddress = new Uint8Array(16);
  readonly #peerAddressLength = new Uint32Array(1);

  /** `room`: where the room lives, when not here (a lab whose threads each hold members relays it, as lab 06 does). */
  constructor(ground: Ground<Extra>, room: RoomPort = new LocalRoom()) {
    this.room = room;
    this.libc = ground.libc;
    this.options = ground.options;
    this.listenFd = ground.listenFd;
    this.turns = new EventLoopTurns(ground.libc);
    this.guard = new AcceptGuard(ground.libc, ground.options.log, ground.turnAway, ground.blocking === true);
  }

  /** The loop: until the listening socket is closed and the last client has gone. */
  abstract run(): Promise<void>;
  abstract transmit(connection: C): void;
  abstract closeWhenSent(connection: C): void;
  abstract abandon(connection: C): void;
  /** Shutdown, step 1's mechanism: take the listening socket out of service. */
  protected abstract stopListening(): void;
  /** A pause of accepting (the guard's) is over. */
  protected abstract resumeAccepting(): void;

  /** Shutdown, step 1: accept nobody new; the kernel resets whoever waits in the queue. */
  stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.stopListening();
  }

  /** Shutdown, step 2: each client finishes what it is doing (a request in progress, a goodbye). */
  finishAll(): void {
    for (const connection of [...this.connections.values()]) connection.conversation.stop();
    this.afterShutdownStep();
  }

  /** Shutdown, step 3, at the deadline: close every client now. */
  force(): void {
    this.#forced = true;
    for (const connection of [...this.connections.values()]) connection.fail(CLOSED.shutdown);
    this.afterShutdownStep();
  }

  /** Closes the listening socket (once), when the mechanism no longer holds it. */
  protected closeListener(): void {
    if (this.listenFd < 0) return;
    this.libc.close(this.listenFd);
    this.listenFd = -1;
  }

  /** A shutdown step ran (in Node's turn, outside the loop's): lab 07 submits what it queued now. */
  protected afterShutdownStep(): void {}

  /**
   * A client accepted on `fd`: closed at once past --max-conns (as libuv does for lab 04) or when
   * the mechanism refuses it (`refusal`, its reason: select's FD_SETSIZE); otherwise its connection,
   * in the table. The lab registers it, then calls `conversation.start()`.
   */
  protected admit(fd: number, peer: string | undefined, now: number, make: (admission: Admission) => C, refusal?: string): C | undefined {
    const libc = this.libc;
    // An accept that gave no address (a multishot ACCEPT: one buffer could not serve many completions): ask.
    peer ??= this.#peerName(fd);
    if (this.connections.size >= this.options.maxConns || refusal !== undefined) {
      if (refusal !== undefined) this.options.log.warn(`client ${peer} refused: ${refusal}`);
      libc.close(fd);
      return undefined;
    }
    // Echo round trips are small writes answered by small writes: without TCP_NODELAY, Nagle's
    // algorithm could hold a reply back until the client's delayed ACK (every lab sets it, unless
    // --no-nodelay asks for Nagle, for the Nagle experiment).
    if (this.options.noDelay) libc.setsockopt(fd, libc.IPPROTO_TCP, libc.TCP_NODELAY, ON, 4);
    const connection = make({ mechanism: this, id: this.#nextId++, fd, peer, now });
    this.connections.set(connection.id, connection);
    return connection;
  }

  #peerName(fd: number): string {
    this.#peerAddressLength[0] = this.#peerAddress.length;
    return this.libc.getpeername(fd, this.#peerAddress, this.#peerAddressLength) === 0 ? this.libc.formatSockaddrIn(this.#peerAddress) : 'unknown peer';
  }

  /** The connection's descriptor is closed for good: out of the room and the table, its disconnect line. */
  protected forget(connection: C): void {
    if (connection.gone) return;
    connection.gone = true;
    connection.conversation.release();
    connection.outbox.drop();
    this.connections.delete(connection.id);
    connection.record.disconnected(connection.received, connection.sent);
  }

  /**
   * After each wake-up: a paused accept resumes when due, the sweep runs every SWEEP_MS, and
   * Node's event loop gets a turn when the wait found nothing (`idle`) or one is due. Returns the
   * turn to await, if any (no promise on the hot path).
   */
  protected afterWake(now: number, idle: boolean): Promise<void> | undefined {
    if (this.accepting && this.guard.resumes(now)) this.resumeAccepting();
    if (now - this.#lastSweepAt >= SWEEP_MS) this.sweep(now);
    return idle || this.turns.due(now) ? this.turns.take() : undefined;
  }

  /** Closes the connections over a time limit (and all of them once the shutdown is forced). */
  protected sweep(now: number): void {
    this.#lastSweepAt = now;
    for (const connection of [...this.connections.values()]) this.overLimit(connection, now);
  }

  /** Fails `connection` if it is over a time limit, or the shutdown is forced; true if it has failed (now or before). */
  protected overLimit(connection: C, now: number): boolean {
    if (connection.failed) return true;
    const over = this.#forced ? CLOSED.shutdown : limitReached(this.options.limits, connection.times, now);
    if (over) connection.fail(over);
    return over !== undefined;
  }

  /** After the loop: nothing of the house stays open. */
  protected closeHouse(): void {
    this.guard.close();
  }
}
