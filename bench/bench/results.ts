/**
 * The raw results file (results/bench.json): everything the renderer needs and nothing it has to
 * recompute from the machine, so `make report` renders a report from any earlier run.
 *
 * Every figure is per run (one repeat of one cell); medians and spreads are the renderer's job.
 * A figure that could not be measured (server-side figures of a `--target` server) is null.
 */

import type { Stamp } from '../pipeline/stamp.js';

export const SCHEMA_VERSION = 1;

export type ScenarioId = 'echo' | 'http' | 'cpu' | 'churn' | 'capacity';
export const SCENARIO_IDS: readonly ScenarioId[] = ['echo', 'http', 'cpu', 'churn', 'capacity'];

export interface TargetInfo {
  readonly id: string;
  readonly label: string;
  readonly model: string;
  readonly kind: 'lab' | 'reference' | 'remote';
  readonly protocols: readonly string[];
  readonly limit?: string;
  /** Why it could not run at all in this run. */
  readonly unavailable?: string;
}

/** One cell of a scenario's grid, e.g. 100 connections × 64 B. */
export interface CellSpec {
  readonly key: string;
  readonly title: string;
  readonly params: Readonly<Record<string, number>>;
}

export type Metrics = Record<string, number | null>;

export interface RunResult {
  readonly metrics: Metrics;
  /** Things a reader must know about this run (the load generator saturated, an error seen). */
  readonly notes: readonly string[];
}

export type CellStatus =
  /** Measured; `runs` holds one entry per repeat. */
  | 'ok'
  /** The target does not speak this scenario's protocol. */
  | 'not-applicable'
  /** The target could not run at all (see TargetInfo.unavailable). */
  | 'unavailable'
  /** Measured, and the server could not do it (capacity): `reason` says what was seen. */
  | 'cannot'
  /** Not run, because a measurement in this run already showed it cannot: `reason` says which. */
  | 'not-attempted'
  /** The harness failed (the server crashed, did not start): `reason` has the error. */
  | 'failed';

export interface CellResult {
  readonly target: string;
  readonly cell: string;
  readonly status: CellStatus;
  readonly reason?: string;
  readonly runs: readonly RunResult[];
}

export interface ScenarioResult {
  readonly id: ScenarioId;
  readonly cells: readonly CellSpec[];
  readonly results: readonly CellResult[];
  /** Cores the server ran on ("1", "0-1") or undefined when not pinned. */
  readonly serverCpus: string | undefined;
  /** Scenario-wide facts for the report (the work per request, the ideal ratio's inputs). */
  readonly facts: Readonly<Record<string, number | string>>;
}

export interface BenchResults {
  readonly schema: typeof SCHEMA_VERSION;
  readonly stamp: Stamp;
  readonly settings: Readonly<Record<string, unknown>>;
  readonly cpus: { readonly cores: number; readonly loadGenerator: string | undefined; readonly server: string | undefined; readonly all: string | undefined };
  readonly targets: readonly TargetInfo[];
  readonly scenarios: readonly ScenarioResult[];
  readonly wallSeconds: number;
  /** The kernel's 1-minute load average as the run started and ended: was anything else running? */
  readonly loadAverage?: { readonly start: number; readonly end: number };
}
