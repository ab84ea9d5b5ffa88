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

/**
 * TEST-ONLY switch, unset in normal use: when this environment variable is set, a job whose
 * payload contains its value throws, so the robust suite (case 11) can show that a failing task
 * fails only its own connection and leaves the pool at full size. Costs one check when unset.
 */
const FAIL_MARKER_ENV = 'IOLAB_TEST_TASK_FAIL_MARKER';
const failMarker = process.env[FAIL_MARKER_ENV] ? Buffer.from(process.env[FAIL_MARKER_ENV]) : undefined;

function provokedFailure(job: Job): boolean {
  if (!failMarker) return false;
  const payload = job.kind === 'echo' ? job.data : job.kind === 'http' ? job.body : undefined;
  return payload !== undefined && Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(failMarker);
}

export default function runJob(job: Job): Uint8Array {
  if (provokedFailure(job)) throw new Error(`task failed on purpose (${FAIL_MARKER_ENV} is set: test-only)`);
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
