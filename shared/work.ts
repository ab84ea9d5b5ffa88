/**
 * Simulated per-request CPU work (`--work-us N`).
 *
 * The labs compare where work *runs*, so the work itself must be identical everywhere and must
 * really occupy a CPU: a sleep would let one event loop look as good as a pool of threads. We spin
 * a small integer hash for a calibrated number of iterations and keep its result in a module-level
 * sink, so the JIT cannot prove the loop dead and remove it.
 *
 * Calibration runs once, in the process that parses the command line; children and worker threads
 * receive the calibrated rate instead of measuring it again (a child of lab 02 would otherwise pay
 * the calibration in its start-up, and the lab would measure that instead of the model).
 */

export interface WorkSpec {
  /** Microseconds of CPU work per request (http) or per received chunk (echo); 0 for none. */
  readonly workUs: number;
  /** Loop iterations that take one microsecond on this machine, from `calibrateWork()`. */
  readonly itersPerUs: number;
}

export const NO_WORK: WorkSpec = { workUs: 0, itersPerUs: 0 };

/** Written on every call to `doWork` so the optimizer must keep the loop; read it if you like. */
export let workSink = 0;

function spin(iterations: number, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < iterations; i++) {
    h = Math.imul(h ^ i, 0x5bd1e995);
    h ^= h >>> 15;
  }
  return h;
}

/**
 * Measures how many `spin` iterations run per microsecond of CPU. Each round is timed by the CPU
 * the process spent (getrusage), not the clock: on a busy machine a round the scheduler preempts
 * takes longer by the clock, and work calibrated by it would burn too little CPU. Takes the
 * fastest of several rounds: the first ones include JIT compilation (and the compiler's threads).
 */
export function calibrateWork(): number {
  // 2 million iterations is a few milliseconds: long enough to dwarf timer resolution, short
  // enough that five rounds do not delay start-up noticeably.
  const iterations = 2_000_000;
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.cpuUsage();
    workSink ^= spin(iterations, round);
    const spent = process.cpuUsage(start);
    best = Math.min(best, spent.user + spent.system);
  }
  return iterations / Math.max(best, 1);
}

/** Burns about `spec.workUs` microseconds of CPU. `seed` varies the input, e.g. a payload length. */
export function doWork(spec: WorkSpec, seed: number): void {
  if (spec.workUs <= 0) return;
  workSink ^= spin(Math.round(spec.workUs * spec.itersPerUs), seed);
}

export function workSpec(workUs: number): WorkSpec {
  return workUs > 0 ? { workUs, itersPerUs: calibrateWork() } : NO_WORK;
}
