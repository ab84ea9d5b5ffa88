/**
 * Lab 03's worker: runs one job on a pool thread. The same `respond` every other lab runs
 * inline, so the only difference the lab measures is where it runs.
 */

import { workerData } from 'node:worker_threads';
import { respond, type Job } from '../../shared/protocol.js';
import type { WorkSpec } from '../../shared/work.js';

export interface TaskData {
  readonly work: WorkSpec;
  /** [tasks completed, tasks running now, most ever running at once], shared by all threads. */
  readonly counters: Int32Array;
}

const { work, counters } = workerData as TaskData;

export default function runJob(job: Job): Uint8Array {
  const running = Atomics.add(counters, 1, 1) + 1;
  // Lock-free maximum: retry if another thread raised it in between.
  for (let peak = Atomics.load(counters, 2); running > peak; peak = Atomics.load(counters, 2)) {
    if (Atomics.compareExchange(counters, 2, peak, running) === peak) break;
  }
  try {
    return respond(job, work);
  } finally {
    Atomics.sub(counters, 1, 1);
    Atomics.add(counters, 0, 1);
  }
}
