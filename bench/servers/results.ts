/**
 * The raw results file (results/bench.json): everything the renderer needs and nothing it has to
 * recompute from the machine, so `make report` renders a report from any earlier run.
 *
 * Every figure is per run (one repeat of one cell); medians and spreads are the renderer's job.
 * A figure that could not be measured (server-side figures of a `--target` server) is null.
 */

import type { ReportFile } from '../kit/report-file.js';
import type { TargetSpec } from './targets.js';

/**
 * 5: the idle scenario goes to 100,000 connections and records, per level, how long opening took,
 * the source addresses it used, and what a connection cost the server (RSS) and the kernel (slab,
 * socket buffers, sockets, conntrack entries); its facts hold the machine's limits (older files
 * lack all of these: "–", and no million-connection outlook). 4: the C load generator warms up until every connection is answered once, and the raw-echo and
 * idle runs record how long that took and the server's start-up CPU per connection (older files
 * lack both: "–"). 3: the idle-connections scenario, the load generator's CPU per round trip, which servers each
 * scenario left out (and why), and which targets are multi-core. 2: the file names its
 * experiment, carries the lab descriptions, and the stamp its load average.
 */
export const SCHEMA_VERSION = 5;

export type ScenarioId = 'echo' | 'idle' | 'http' | 'cpu' | 'churn' | 'capacity';
export const SCENARIO_IDS: readonly ScenarioId[] = ['echo', 'idle', 'http', 'cpu', 'churn', 'capacity'];

/** The two reference servers' ids (not labs): the report splits a lab's cost at them. */
export const C_REFERENCE_ID = 'c-epoll';
/** The C thread-per-connection reference (bench/reference/echo-threads.c), beside lab 08. */
export const C_THREADS_REFERENCE_ID = 'c-threads';
export const PLAIN_NODE_ID = 'plain-node';

/** A server as the results file records it (its fields as targets.ts describes them). */
export type TargetInfo = Pick<TargetSpec, 'id' | 'label' | 'model' | 'kind' | 'limit' | 'traits'> & {
  readonly protocols: readonly string[];
  /** Why it could not run at all in this run. */
  readonly unavailable?: string;
  readonly multiCore?: boolean;
};

/** One cell of a scenario's grid, e.g. 100 connections × 64 B. */
export interface CellSpec {
  readonly key: string;
  readonly title: string;
  readonly params: Readonly<Record<string, number>>;
}

/** The figures of a server's CPU and memory that every windowed scenario records. */
export const USAGE_METRICS = ['serverCpuMs', 'cpuUsPerUnit', 'serverCores', 'peakRssBytes', 'peakProcesses', 'loadGenCorePct'] as const;
/** Figures only the C load generator reports: its own CPU per round trip. */
export type ClientCpuMetric = 'loadGenCpuUsPerUnit';
/** The C load generator's warm-up: how long it took, and the server's start-up CPU per connection answered in it. */
export type WarmupMetric = 'warmupS' | 'startCpuUsPerConnection';
/**
 * The idle scenario's figures of a level (the same in each of its runs): how long opening took,
 * over how many source addresses, the server's RSS while holding, and per connection what the
 * server and the kernel hold (bench/servers/per-connection.ts).
 */
export type IdleLevelMetric =
  | 'openS' | 'sources' | 'serverRssBytes' | 'rssPerConnection' | 'kernelSlabBytes' | 'kernelBufferBytes'
  | 'kernelPerConnection' | 'socketsPerConnection' | 'conntrackPerConnection';
/** Latency percentiles, in µs; churn records them with the prefix firstEcho (firstEchoP50Us, ...). */
export const LATENCY_METRICS = ['p50Us', 'p90Us', 'p99Us', 'p999Us', 'maxUs'] as const;
export type LatencyMetric<Prefix extends string = ''> = Prefix extends '' ? (typeof LATENCY_METRICS)[number] : `${Prefix}${Capitalize<(typeof LATENCY_METRICS)[number]>}`;

/**
 * Every scenario's metrics, declared once: a run records exactly these (`satisfies Metrics<S>`),
 * and a column or a finding that names any other is a compile error, not a silent "–".
 */
interface ScenarioMetrics {
  echo: 'roundTripsPerSec' | LatencyMetric | 'errors' | 'shortReads' | 'fewest' | 'most' | 'neverAnswered' | ClientCpuMetric | WarmupMetric | (typeof USAGE_METRICS)[number];
  idle: 'idle' | 'roundTripsPerSec' | LatencyMetric | 'errors' | 'fewest' | 'most' | ClientCpuMetric | WarmupMetric | (typeof USAGE_METRICS)[number] | IdleLevelMetric;
  http: 'requestsPerSec' | LatencyMetric | 'errors' | 'timeouts' | 'non2xx' | 'mismatches' | 'fewest' | 'most' | (typeof USAGE_METRICS)[number];
  cpu: ScenarioMetrics['http'];
  churn: 'connectionsPerSec' | LatencyMetric<'firstEcho'> | 'errors' | (typeof USAGE_METRICS)[number];
  capacity:
    | 'connected' | 'echoed' | 'probeFailed' | 'inAcceptQueue' | 'pssBytes' | 'rssBytes' | 'bytesPerConnection'
    | 'processes' | 'serverFds' | 'idleBytes' | 'openMs' | 'probeMs';
}
export type MetricOf<S extends ScenarioId> = ScenarioMetrics[S];
/** Any scenario's metric: what the renderer's generic helpers take. */
export type MetricName = MetricOf<ScenarioId>;
/** One run's figures of scenario S: every one declared, null when not measured. */
export type Metrics<S extends ScenarioId> = Record<MetricOf<S>, number | null>;

export interface RunResult {
  readonly metrics: Readonly<Partial<Record<MetricName, number | null>>>;
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
  /** Servers this scenario did not run, each with the reason (a variant left out for run time). */
  readonly leftOut?: readonly { readonly target: string; readonly reason: string }[];
}

export interface BenchResults extends ReportFile<'bench', typeof SCHEMA_VERSION> {
  readonly settings: Readonly<Record<string, unknown>>;
  readonly cpus: { readonly cores: number; readonly loadGenerator: string | undefined; readonly server: string | undefined; readonly all: string | undefined };
  readonly targets: readonly TargetInfo[];
  readonly scenarios: readonly ScenarioResult[];
  readonly wallSeconds: number;
  /** The kernel's 1-minute load average as the run started and ended: was anything else running? */
  readonly loadAverage?: { readonly start: number; readonly end: number };
}

/**
 * Lifts an older file: schema 4 holds the same shape as 5 without the idle levels' figures and
 * the machine's limits, schema 3 the same as 4 without the warm-up figures (a metric absent is one
 * not measured), so each only takes the new number. Schemas 1 and 2 (no file in the repository
 * holds them now) are refused: measure again.
 */
export function migrateBench(raw: Record<string, unknown>): BenchResults | undefined {
  const lifts = (raw.schema === 3 || raw.schema === 4) && Array.isArray(raw.targets) && Array.isArray(raw.scenarios);
  return lifts ? ({ ...raw, schema: SCHEMA_VERSION } as unknown as BenchResults) : undefined;
}
