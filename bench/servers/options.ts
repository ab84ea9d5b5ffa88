/**
 * The harness's command line. Every option has a full-run default and a quick one (`--quick`,
 * `make bench QUICK=1`): the quick run still covers every scenario and every lab, with shorter
 * windows, one repeat and fewer cells, to check that everything works rather than to measure.
 */

import { UserError } from '../../shared/errors.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { camelSettings, parseSettings, type CamelSettings, type Settings } from '../kit/command-line.js';
import { SCENARIO_IDS, type ScenarioId } from './results.js';
import { ALL_TARGET_IDS } from './targets.js';

/**
 * Full run: about 15 minutes on a 2-core machine with every lab of the registry (see
 * scenarios/variants.ts for which variants each scenario runs). Echo runs 1, 10 and 100
 * connections: the latency of one alone, a few at once (where threads that own their connections
 * begin to switch between each other, issue 30) and the loop under load; 10 adds about two
 * minutes (scenarios/echo.ts runs 4096 B only at the most connections).
 */
export const FULL = {
  duration: 2,
  warmup: 0.5,
  repeats: 3,
  connections: [1, 10, 100],
  sizes: [64, 4096],
  // 100 connections only: the headline cell of the HTTP section; 10 added about a minute.
  httpConnections: [100],
  pipelining: 10,
  httpBodyBytes: 64,
  workUs: 1000,
  cpuConnections: 10,
  churnClients: 10,
  capacity: [100, 1000, 10000],
  // C10K to C100K: 10,000 is where poll's cost shows; 100,000 where the kernel's memory per connection does.
  idle: [0, 10000, 30000, 100000],
  // One busy connection: each round trip is one wake-up of the loop among the idle descriptors.
  idleActive: 1,
} as const satisfies Record<string, number | readonly number[]>;
type Tunable = keyof typeof FULL;

/**
 * Quick run: every scenario and lab in well under 90 seconds. Connection counts stay small
 * because the process-per-connection lab starts a Node process for each one.
 */
export const QUICK: Readonly<Record<Tunable, number | readonly number[]>> = {
  ...FULL,
  duration: 0.5,
  warmup: 0.2,
  repeats: 1,
  connections: [1, 10],
  sizes: [64],
  httpConnections: [10],
  capacity: [10, 100],
  idle: [0, 1000],
};

const numbers = (key: Tunable, describe: string, min = 1) =>
  ({ type: 'numbers', default: FULL[key] as readonly number[], quick: QUICK[key] as readonly number[], min, max: 1_000_000, describe }) as const;
const whole = (key: Tunable, describe: string) => ({ type: 'number', default: FULL[key] as number, quick: QUICK[key] as number, min: 0, above: true, integer: true, describe }) as const;
const seconds = (key: Tunable, describe: string) => ({ type: 'number', default: FULL[key] as number, quick: QUICK[key] as number, min: 0, above: true, describe }) as const;

export const BENCH_OPTIONS = {
  labs: { type: 'list', default: ALL_TARGET_IDS, choices: ALL_TARGET_IDS, describe: 'servers to measure' },
  scenarios: { type: 'list', choices: SCENARIO_IDS, describe: `scenarios to run: ${SCENARIO_IDS.join(', ')} [default: all; with --target, those its protocol takes]` },
  duration: seconds('duration', 'seconds of each measured window'),
  warmup: seconds('warmup', 'least seconds of warm-up in each cell, before its first window'),
  repeats: whole('repeats', 'runs of each cell (windows back to back after the warm-up); the report shows their median and spread'),
  connections: numbers('connections', 'echo: connection counts'),
  sizes: numbers('sizes', 'echo: message sizes in bytes'),
  'http-connections': numbers('httpConnections', 'http: connection counts'),
  pipelining: whole('pipelining', 'http: requests in flight per connection when pipelining (each count also runs without)'),
  'http-body-bytes': whole('httpBodyBytes', 'http and cpu: request body size in bytes'),
  'work-us': whole('workUs', "cpu: CPU work per request in µs (the labs' --work-us)"),
  'cpu-connections': whole('cpuConnections', 'cpu: connections'),
  'churn-clients': whole('churnClients', 'churn: clients connecting and closing at once'),
  capacity: numbers('capacity', 'capacity: idle connection counts to hold'),
  idle: numbers('idle', 'idle: idle connections held beside the busy ones', 0),
  'idle-active': whole('idleActive', 'idle: busy connections ping-ponging 64 B'),
  target: { type: 'string', describe: 'HOST:PORT of a server started elsewhere to measure instead of the labs (server-side figures unavailable)' },
  'target-protocol': { type: 'string', choices: ['echo', 'http'], default: 'echo', describe: 'protocol the --target server speaks; picks the scenarios that fit' },
  pin: { type: 'boolean', default: true, describe: 'pin load generator and server to separate cores with taskset (--no-pin to not)' },
} as const;

export const BENCH_ABOUT =
  'Runs every lab (and a C reference) under the same load, writes the raw results as JSON and renders them as Markdown. ' +
  'Each lab is started fresh for each scenario, warmed up, measured and stopped.';

/** The kit's typed settings in the shape the scenarios read and results/bench.json records. */
export type BenchSettings = Omit<CamelSettings<typeof BENCH_OPTIONS>, 'scenarios' | 'target' | 'targetProtocol'> & {
  readonly scenarios: readonly ScenarioId[];
  readonly target: { readonly host: string; readonly port: number } | undefined;
  readonly targetProtocol: ProtocolName;
};

export function benchSettings(s: Settings<typeof BENCH_OPTIONS>): BenchSettings {
  const target = s.target === undefined ? undefined : parseTarget(s.target);
  const targetProtocol = s['target-protocol'] as ProtocolName;
  const scenarios = (s.scenarios as readonly ScenarioId[] | undefined) ?? (target ? scenariosFor(targetProtocol) : [...SCENARIO_IDS]);
  return { ...camelSettings(s), scenarios, target, targetProtocol };
}

export function parseBenchArgs(args: readonly string[]): BenchSettings {
  return benchSettings(parseSettings('bench', BENCH_ABOUT, BENCH_OPTIONS, args));
}

/** The scenarios a `--target` server can take part in, by the protocol it speaks. */
export function scenariosFor(protocol: ProtocolName): ScenarioId[] {
  // Not 'cpu': its work per request is a flag of our own servers, unknown for a server elsewhere.
  // Not 'idle' either: its figure is the server's CPU, which a server elsewhere does not show us.
  return protocol === 'echo' ? ['echo', 'churn', 'capacity'] : ['http'];
}

export function parseTarget(text: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new UserError(`--target must be HOST:PORT, e.g. 192.0.2.7:8080, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}
