/**
 * The window clock every load generator shares: warm up, then measure windows back to back (the
 * repeats of a benchmark cell), then let the last one drain. The generator supplies what differs
 * (when it is warm, what a window counts, how it drains); the order of the steps and of the
 * callbacks a sampler relies on (`onWindowStart` / `onWindowEnd` framing exactly the window) is
 * written once, here.
 *
 *   1. Warm up for at least `minMs`, then until `ready()` says so, at most `maxMs`.
 *   2. For each window: `reset(w)`, then `onWindowStart(w)`, then `begin(w)` (count from here);
 *      wait `durationMs`, or less if `finished()` says the window has all it needs.
 *   3. `stop(w, last)` (stop counting), then `onWindowEnd(w)`, then `collect(w, windowMs, last)`,
 *      which on the last window also drains what is still in flight.
 */

import { setTimeout as delay } from 'node:timers/promises';
import type { Signal } from './signal.js';

/**
 * Warm-up stops waiting for connections still unanswered after no new one was answered for this
 * long: long enough for a forking server's next child to start on a busy machine.
 */
export const WARMUP_STALL_MS = 1_000;

export interface Warmup {
  readonly minMs: number;
  readonly maxMs: number;
  /** Asked after `minMs`: is every connection (or enough of them) answered once? */
  readonly ready: () => boolean;
}

export interface WindowSteps<W> {
  readonly windows: number;
  readonly durationMs: number;
  readonly onWindowStart?: (window: number) => void;
  readonly onWindowEnd?: (window: number) => void;
  reset(window: number): void;
  begin(window: number): void;
  /** Ends a window early (a test's round-trip limit reached); undefined: the full duration. */
  finished?(): boolean;
  stop(window: number, last: boolean): void;
  collect(window: number, windowMs: number, last: boolean): W | Promise<W>;
}

/** Re-asks a time-based condition this often at most; shorter warm-ups are polled more often. */
const POLL_MS = 100;
const MIN_POLL_MS = 10;

/** Steps 1-3, waking on `signal` whenever the generator sees progress. */
export async function runWindows<W>(signal: Signal, warmup: Warmup | undefined, steps: WindowSteps<W>): Promise<W[]> {
  if (warmup) {
    const warmStart = performance.now();
    await signal.until(() => {
      const elapsed = performance.now() - warmStart;
      if (elapsed < warmup.minMs) return false;
      return elapsed >= warmup.maxMs || warmup.ready();
    }, Math.max(MIN_POLL_MS, Math.min(warmup.minMs, POLL_MS)));
  }
  const results: W[] = [];
  for (let w = 0; w < steps.windows; w++) {
    const last = w === steps.windows - 1;
    steps.reset(w);
    steps.onWindowStart?.(w);
    const started = performance.now();
    steps.begin(w);
    const finished = steps.finished;
    if (finished) await signal.until(() => performance.now() - started >= steps.durationMs || finished(), Math.min(steps.durationMs, POLL_MS / 2));
    else await delay(steps.durationMs); // the window's length, not synchronization
    const windowMs = performance.now() - started;
    steps.stop(w, last);
    steps.onWindowEnd?.(w);
    results.push(await steps.collect(w, windowMs, last));
  }
  return results;
}
