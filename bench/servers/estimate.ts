/**
 * Planned seconds for the progress line's "time left" (nothing else reads them). Each term is a
 * cost the run really has; the constants are what those costs were on a busy 2-core machine, and
 * the progress line corrects its pace from the steps already done, so they need only be close.
 */

import { WARMUP_STALL_MS } from '../load/window.js';
import type { BenchSettings } from './options.js';
import type { CellSpec } from './results.js';
import type { TargetSpec } from './targets.js';

/**
 * After an echo cell's last window: the drain (outstanding replies arrive within milliseconds)
 * and the settle (accept queue, children and descriptors back to the baseline: a few 50 ms polls).
 */
const DRAIN_AND_SETTLE_S = 0.5;
/** autocannon needs about a tenth of a second more than our own client to stop its connections. */
const AUTOCANNON_STOP_S = 0.1;
/** Loopback handshakes a second the capacity scenario's opener achieves, 200 at a time. */
const HANDSHAKES_PER_S = 4000;
/** A capacity run starts and stops a fresh server and probes every connection once. */
const CAPACITY_RUN_S = 1;

/** The warm-up and the windows every windowed cell has. */
const windows = (settings: BenchSettings) => settings.warmup + settings.repeats * settings.duration;

/** Process starts before a forking server answers `connections` (at most its connection cap). */
const processStarts = (target: TargetSpec, connections: number) =>
  (target.startCost?.perConnection ?? 0) * Math.min(connections, target.startCost?.maxConnections ?? connections);

/**
 * A server that serves one connection at a time leaves the warm-up waiting, for the connections it
 * never answers, until no new one has been answered for WARMUP_STALL_MS.
 */
const queueStall = (target: TargetSpec, connections: number) => (target.startCost?.queues && connections > 1 ? WARMUP_STALL_MS / 1000 : 0);

/**
 * The C load generator runs once per repeat: each run starts the client, connects, warms up (until
 * every connection is answered: a forking server's children all start within it; a serial server
 * leaves it waiting for the stall), measures and drains. Only the estimate uses these constants:
 * the warm-up itself ends on what the client sees.
 */
const C_CLIENT_RUN_S = 0.4;
export function echoEstimate(settings: BenchSettings, cell: CellSpec, target: TargetSpec): number {
  const connections = cell.params.connections!;
  const perRun = settings.warmup + processStarts(target, connections) + queueStall(target, connections) + settings.duration + C_CLIENT_RUN_S;
  return settings.repeats * perRun + DRAIN_AND_SETTLE_S;
}

export function httpEstimate(settings: BenchSettings, cell: CellSpec, target: TargetSpec): number {
  const connections = cell.params.connections!;
  return windows(settings) + DRAIN_AND_SETTLE_S + AUTOCANNON_STOP_S + processStarts(target, connections) + queueStall(target, connections);
}

/** Every churn cycle starts a process on a forking server: the warm-up's `clients` cycles and as many again in the first window. */
export function churnEstimate(settings: BenchSettings, cell: CellSpec, target: TargetSpec): number {
  return windows(settings) + DRAIN_AND_SETTLE_S + (target.startCost?.perConnection ?? 0) * cell.params.clients! * 2;
}

/**
 * Per repeat: a fresh server and the probe, the handshakes, a forking server's process starts, and
 * for a server that leaves connections queued, the probe waiting `probeStallMs` for echoes that
 * never come.
 */
export function capacityEstimate(settings: BenchSettings, cell: CellSpec, target: TargetSpec, probeStallMs: number): number {
  const n = cell.params.connections!;
  const perRun = CAPACITY_RUN_S + n / HANDSHAKES_PER_S + processStarts(target, n) + (target.startCost?.queues ? probeStallMs / 1000 : 0);
  return settings.repeats * perRun;
}
