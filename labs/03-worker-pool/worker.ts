/**
 * What each pool thread runs (piscina's `filename`): the same `respond` every other lab runs
 * inline, so the only difference the lab measures is where it runs. Around it, added from
 * outside the work: the counters for the shutdown summary (meter.ts) and the test-only failure
 * switch (test-hooks.ts).
 */

import { workerData } from 'node:worker_threads';
import { respond, type Job } from '../../shared/protocol.js';
import type { WorkSpec } from '../../shared/work.js';
import { metered } from './meter.js';
import { failIfMarked } from './test-hooks.js';

export interface WorkerInput {
  readonly work: WorkSpec;
  /** TaskMeter's counters, shared by every thread. */
  readonly counters: Int32Array;
}

const { work, counters } = workerData as WorkerInput;

export default function runJob(job: Job): Uint8Array {
  failIfMarked(job);
  return metered(counters, () => respond(job, work));
}
