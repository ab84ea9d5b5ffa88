/**
 * Waiting on a descriptor without starving Node's event loop, for labs that make their own
 * system calls (lab 01's poll(), an epoll loop's epoll_wait()).
 *
 * JavaScript has one thread, and while it sits in a system call no signal handler or timer runs.
 * So every wait is bounded (at most POLL_MS), and after it the event loop gets a turn: a Ctrl-C,
 * the shutdown deadline and `close()` itself run then, and only then. A C server would simply
 * block; the price here is a bounded wait instead of an unbounded one, and a turn now and then.
 *
 * The turn is taken when a wait ends with nothing ready, or when TURN_EVERY_MS has passed since
 * the last one, never on every round trip: a turn costs one to two microseconds of CPU (an
 * epoll_wait and Node's bookkeeping, measured for lab 01), which taken per round trip would be a
 * cost of this workaround billed to the model. Every 10 ms it is noise, and a signal still waits
 * no longer than one bounded wait.
 *
 * Usage, in the style the hot loop needs (no promise unless a turn is due):
 *   const ready = turns.poll(fd, libc.POLLIN);
 *   if (!ready || turns.due()) await turns.take();
 */

type Libc = typeof import('./libc.js');

/**
 * Longest one wait blocks the thread. It bounds how late a signal, the shutdown deadline or a
 * connection limit is noticed, and costs an idle server 20 wake-ups a second.
 */
export const POLL_MS = 50;

/** While bytes keep flowing, the event loop gets a turn only once this much time has passed. */
export const TURN_EVERY_MS = 10;

export class EventLoopTurns {
  readonly #libc: Libc;
  readonly #pollFd: InstanceType<Libc['PollFd']>;
  #lastTurnAt = 0;

  constructor(libc: Libc) {
    this.#libc = libc;
    // Reused by every wait, so the hot loop allocates nothing here.
    this.#pollFd = new libc.PollFd();
  }

  /**
   * Blocks in poll() for at most `timeoutMs` until `fd` is ready for `events`. True when it is
   * ready (or in error, which the following read or write reports); false when the time ran out
   * or a signal interrupted the wait, and the caller should take a turn.
   */
  poll(fd: number, events: number, timeoutMs = POLL_MS): boolean {
    const libc = this.#libc;
    this.#pollFd.set(fd, events);
    const n = libc.poll(this.#pollFd.words, 1, timeoutMs);
    if (n > 0) return true;
    if (n === 0) return false;
    const error = libc.errno();
    if (error === libc.EINTR) return false; // most likely our Ctrl-C: take the turn now
    throw libc.callError('poll', error);
  }

  /** True once TURN_EVERY_MS has passed since the last turn. */
  due(now = performance.now()): boolean {
    return now - this.#lastTurnAt >= TURN_EVERY_MS;
  }

  /**
   * Gives the event loop one turn (setImmediate runs after its I/O phase): signal handlers,
   * timers such as the shutdown deadline, and close() run here. Anything may have changed after
   * it: the caller re-checks its state.
   */
  take(): Promise<void> {
    return new Promise((resolve) =>
      setImmediate(() => {
        this.#lastTurnAt = performance.now();
        resolve();
      }),
    );
  }
}
