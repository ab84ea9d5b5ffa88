/**
 * The balance experiment's results file: what each step measured, as plain data, so the report
 * renders from this file alone (render.ts) and an old file keeps the figures it was made with.
 */

import type { ReportFile } from '../kit/report-file.js';

export const BALANCE_SCHEMA = 1;

/** How the spread step's connections arrive. */
export interface Arrival {
  /** "light" (spread over `overMs`) or "burst" (all at once). */
  readonly name: 'light' | 'burst';
  readonly connections: number;
  /** 0 for a burst: every connection is started at once. */
  readonly overMs: number;
}

/** One spread run: one policy, one worker count, one arrival. */
export interface SpreadRun {
  readonly policy: string;
  readonly workers: number;
  readonly arrival: Arrival;
  /** Connections each worker served, from the lab's shutdown summary, worker 0 first. */
  readonly perWorker: readonly number[];
  /** Connections that failed to connect or to echo (0 when every one was served). */
  readonly failed: number;
  /** From the first connect to the last echo. */
  readonly elapsedMs: number;
}

/** One probe of the stall step. */
export interface Probe {
  /** When it started connecting, ms after the staller's write. */
  readonly sentAtMs: number;
  /** From connect to the end of its response, ms; null when it got no response. */
  readonly responseMs: number | null;
  /** The worker whose log line named the probe's connection; null when no line did. */
  readonly worker: number | null;
}

export interface StallRun {
  readonly policy: string;
  readonly workers: number;
  /** The loop the staller's connection landed on, from its log line. */
  readonly stalledWorker: number | null;
  /** The staller's requests and how long, from its write to its last response, they took. */
  readonly stallerRequests: number;
  readonly stallMs: number | null;
  readonly probes: readonly Probe[];
}

export interface StallSettings {
  readonly workers: number;
  readonly workUs: number;
  readonly requests: number;
  readonly probeIntervalMs: number;
  /** A probe that took longer than this many × the work waited for the stalled loop. */
  readonly slowFactor: number;
}

/** One scaling run: a server, under CPU-bound HTTP load through autocannon. */
export interface ScalingRun {
  readonly lab: string;
  readonly label: string;
  /** The lab 06 policy, when the run is lab 06. */
  readonly policy?: string;
  /** Workers (lab 06), threads (lab 03), or 1 (lab 04). */
  readonly cores: number;
  readonly requestsPerSec: number;
  readonly errors: number;
  /** Cores the server's process kept busy on average (CPU time / wall time); null when unreadable. */
  readonly serverCores: number | null;
  /** The load generator (autocannon, in the harness) as a share of one core, %. */
  readonly loadGenCorePct: number;
  /** Lab 06: round trips each worker served over the whole run (warm-up included). */
  readonly perWorkerRoundTrips?: readonly number[];
  readonly perWorkerConnections?: readonly number[];
}

export interface ScalingSettings {
  readonly workUs: number;
  readonly connections: number;
  readonly durationMs: number;
  readonly cores: number;
}

export interface BalanceResults {
  readonly lab: { readonly id: string; readonly label: string };
  readonly policies: readonly string[];
  readonly spread: readonly SpreadRun[];
  readonly stall: { readonly settings: StallSettings; readonly runs: readonly StallRun[] };
  readonly scaling: { readonly settings: ScalingSettings; readonly runs: readonly ScalingRun[] };
}

export interface BalanceReport extends ReportFile<'balance', typeof BALANCE_SCHEMA> {
  readonly results: BalanceResults;
}
