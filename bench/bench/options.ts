/**
 * The harness's command line. Every option has a full-run default and a quick one (`--quick`,
 * `make bench QUICK=1`): the quick run still covers every scenario and every lab, with shorter
 * windows, one repeat and fewer cells, to check that everything works rather than to measure.
 */

import { UserError } from '../../shared/errors.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, type CommonSettings } from '../kit/legacy-options.js';
import { SCENARIO_IDS, type ScenarioId } from './results.js';
import { ALL_TARGET_IDS } from './targets.js';

export interface BenchSettings extends CommonSettings {
  readonly labs: readonly string[];
  readonly scenarios: readonly ScenarioId[];
  /** Seconds of each measured window. */
  readonly duration: number;
  /** Least seconds of warm-up in each cell, before its first measured window. */
  readonly warmup: number;
  readonly repeats: number;
  readonly connections: readonly number[];
  readonly sizes: readonly number[];
  readonly httpConnections: readonly number[];
  readonly pipelining: number;
  readonly httpBodyBytes: number;
  readonly workUs: number;
  readonly cpuConnections: number;
  readonly churnClients: number;
  readonly capacity: readonly number[];
  /** Idle connections held while a few busy ones ping-pong (the C10K scenario); 0 is allowed. */
  readonly idle: readonly number[];
  /** The busy connections of the idle scenario. */
  readonly idleActive: number;
  readonly target: { readonly host: string; readonly port: number } | undefined;
  readonly targetProtocol: ProtocolName;
  readonly pin: boolean;
}

type Tunable = Exclude<keyof BenchSettings, keyof CommonSettings | 'labs' | 'scenarios' | 'target' | 'targetProtocol' | 'pin'>;

/**
 * Full run: about 15 minutes on a 2-core machine with every lab of the registry (see
 * scenarios/variants.ts for which variants each scenario runs). Echo runs 1 and 100 connections:
 * the latency of one alone and the loop under load; 10 added about two minutes and no lesson
 * (scenarios/echo.ts runs 4096 B only at the most connections).
 */
export const FULL: Readonly<Record<Tunable, number | readonly number[]>> = {
  duration: 2,
  warmup: 0.5,
  repeats: 3,
  connections: [1, 100],
  sizes: [64, 4096],
  // 100 connections only: the headline cell of the HTTP section; 10 added about a minute.
  httpConnections: [100],
  pipelining: 10,
  httpBodyBytes: 64,
  workUs: 1000,
  cpuConnections: 10,
  churnClients: 10,
  capacity: [100, 1000, 10000],
  idle: [0, 1000, 10000],
  idleActive: 10,
};

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

const list = (name: string, least = 1) => (value: unknown) => {
  const items = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(','));
  return items.filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < least) throw new UserError(`--${name} takes whole numbers from ${least} up, got ${s}`);
    return n;
  });
};
const names = (name: string, allowed: readonly string[]) => (value: unknown) => {
  const items = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(','));
  for (const item of items) {
    if (!allowed.includes(item)) throw new UserError(`--${name}: unknown ${JSON.stringify(item)} (choose from ${allowed.join(', ')})`);
  }
  return items;
};
const quickNote = (key: Tunable) => {
  const show = (v: number | readonly number[]) => (Array.isArray(v) ? v.join(',') : String(v));
  return `[default: ${show(FULL[key])}; quick: ${show(QUICK[key])}]`;
};

export function parseBenchArgs(args: readonly string[]): BenchSettings {
  const parser = experimentParser(
    'bench',
    'Runs every lab (and a C reference) under the same load, writes the raw results as JSON and\n' +
      'renders them as Markdown. Each lab is started fresh for each scenario, warmed up, measured\n' +
      'and stopped. `make bench` runs it in full, `make bench QUICK=1` quickly (into results/quick/),\n' +
      '`make report` re-renders the last results without measuring.',
    args,
  )
    .options({
      labs: { type: 'string', array: true, describe: `servers to measure: ${ALL_TARGET_IDS.join(', ')} [default: all]`, coerce: names('labs', ALL_TARGET_IDS) },
      scenarios: { type: 'string', array: true, describe: `scenarios to run: ${SCENARIO_IDS.join(', ')} [default: all]`, coerce: names('scenarios', SCENARIO_IDS) },
      duration: { type: 'number', describe: `seconds of each measured window ${quickNote('duration')}` },
      warmup: { type: 'number', describe: `least seconds of warm-up in each cell, before its first window ${quickNote('warmup')}` },
      repeats: { type: 'number', describe: `runs of each cell (windows back to back after the warm-up); the report shows their median and spread ${quickNote('repeats')}` },
      connections: { type: 'string', array: true, describe: `echo: connection counts ${quickNote('connections')}`, coerce: list('connections') },
      sizes: { type: 'string', array: true, describe: `echo: message sizes in bytes ${quickNote('sizes')}`, coerce: list('sizes') },
      'http-connections': { type: 'string', array: true, describe: `http: connection counts ${quickNote('httpConnections')}`, coerce: list('http-connections') },
      pipelining: { type: 'number', describe: `http: requests in flight per connection when pipelining (each count also runs without) ${quickNote('pipelining')}` },
      'http-body-bytes': { type: 'number', describe: `http and cpu: request body size in bytes ${quickNote('httpBodyBytes')}` },
      'work-us': { type: 'number', describe: `cpu: CPU work per request in µs (the labs' --work-us) ${quickNote('workUs')}` },
      'cpu-connections': { type: 'number', describe: `cpu: connections ${quickNote('cpuConnections')}` },
      'churn-clients': { type: 'number', describe: `churn: clients connecting and closing at once ${quickNote('churnClients')}` },
      capacity: { type: 'string', array: true, describe: `capacity: idle connection counts to hold ${quickNote('capacity')}`, coerce: list('capacity') },
      idle: { type: 'string', array: true, describe: `idle: idle connections held beside the busy ones ${quickNote('idle')}`, coerce: list('idle', 0) },
      'idle-active': { type: 'number', describe: `idle: busy connections ping-ponging 64 B ${quickNote('idleActive')}` },
      target: { type: 'string', describe: 'HOST:PORT of a server started elsewhere to measure instead of the labs (server-side figures unavailable)' },
      'target-protocol': { type: 'string', choices: ['echo', 'http'], default: 'echo', describe: 'protocol the --target server speaks; picks the scenarios that fit' },
      pin: { type: 'boolean', default: true, describe: 'pin load generator and server to separate cores with taskset (--no-pin to not)' },
    })
    .check((a) =>
      checkNumbers(a, {
        duration: { min: 0, above: true },
        warmup: { min: 0, above: true },
        ...Object.fromEntries(['repeats', 'pipelining', 'http-body-bytes', 'work-us', 'cpu-connections', 'churn-clients', 'idle-active'].map((name) => [name, { min: 0, above: true, integer: true }])),
      }),
    );
  const argv = parseStrictly(parser, args) as Record<string, unknown> & ReturnType<typeof parser.parseSync>;
  const common = commonSettings('bench', argv, args);

  const preset = common.quick ? QUICK : FULL;
  const pick = <T extends number | readonly number[]>(key: Tunable, value: unknown): T => (value as T | undefined) ?? (preset[key] as T);
  const target = argv.target === undefined ? undefined : parseTarget(String(argv.target));
  const targetProtocol = argv['target-protocol'] as ProtocolName;
  const scenarios = (argv.scenarios as ScenarioId[] | undefined) ?? (target ? scenariosFor(targetProtocol) : [...SCENARIO_IDS]);

  return {
    ...common,
    labs: (argv.labs as string[] | undefined) ?? ALL_TARGET_IDS,
    scenarios,
    duration: pick('duration', argv.duration),
    warmup: pick('warmup', argv.warmup),
    repeats: pick('repeats', argv.repeats),
    connections: pick('connections', argv.connections),
    sizes: pick('sizes', argv.sizes),
    httpConnections: pick('httpConnections', argv['http-connections']),
    pipelining: pick('pipelining', argv.pipelining),
    httpBodyBytes: pick('httpBodyBytes', argv['http-body-bytes']),
    workUs: pick('workUs', argv['work-us']),
    cpuConnections: pick('cpuConnections', argv['cpu-connections']),
    churnClients: pick('churnClients', argv['churn-clients']),
    capacity: pick('capacity', argv.capacity),
    idle: pick('idle', argv.idle),
    idleActive: pick('idleActive', argv['idle-active']),
    target,
    targetProtocol,
    pin: argv.pin === true,
  };
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
