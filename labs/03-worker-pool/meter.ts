/**
 * Counts lab 03's tasks from inside the threads, for the summary line at shutdown ("N tasks run,
 * at most M at once on T threads"): the measurement that shows a fixed pool never runs more tasks
 * at once than it has threads. Measured where the tasks run, since only there is "running" exact.
 * Added around the work (worker.ts), not written into it.
 */

import { plural } from '../../shared/log.js';

/** Slots of the shared counters. */
const COMPLETED = 0;
const RUNNING = 1;
const PEAK = 2;

/** The main thread's side: owns the counters the threads update. */
export class TaskMeter {
  readonly counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));

  summary(threads: number): string {
    return `${plural(Atomics.load(this.counters, COMPLETED), 'task')} run, at most ${Atomics.load(this.counters, PEAK)} at once on ${plural(threads, 'thread')}`;
  }
}

/** A thread's side: runs `task`, counted as running meanwhile. */
export function metered<T>(counters: Int32Array, task: () => T): T {
  const running = Atomics.add(counters, RUNNING, 1) + 1;
  // Lock-free maximum: retry if another thread raised it in between.
  for (let peak = Atomics.load(counters, PEAK); running > peak; peak = Atomics.load(counters, PEAK)) {
    if (Atomics.compareExchange(counters, PEAK, peak, running) === peak) break;
  }
  try {
    return task();
  } finally {
    Atomics.sub(counters, RUNNING, 1);
    Atomics.add(counters, COMPLETED, 1);
  }
}
