/**
 * The harness's command line. Every option has a full-run default and a quick one (`--quick`,
 * `make bench QUICK=1`): the quick run still covers every scenario and every lab, with shorter
 * windows, one repeat and fewer cells, to check that everything works rather than to measure.
 */

import path from 'node:path';
import yargs from 'yargs';
import { strictly } from '../../shared/cli.js';
import { UserError } from '../../shared/errors.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { repoRoot } from '../lib/launch.js';
import { SCENARIO_IDS, type ScenarioId } from './results.js';
import { ALL_TARGET_IDS } from './targets.js';

export interface BenchSettings {
  readonly labs: readonly string[];
  readonly scenarios: readonly ScenarioId[];
  readonly quick: boolean;
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
  readonly output: string;
  readonly markdown: string;
  readonly target: { readonly host: string; readonly port: number } | undefined;
  readonly targetProtocol: ProtocolName;
  readonly pin: boolean;
  readonly renderOnly: boolean;
}

type Tunable = Exclude<keyof BenchSettings, 'labs' | 'scenarios' | 'quick' | 'output' | 'markdown' | 'target' | 'targetProtocol' | 'pin' | 'renderOnly'>;

/** Full run: under 10 minutes on a 2-core machine. */
export const FULL: Readonly<Record<Tunable, number | readonly number[]>> = {
  duration: 2,
  warmup: 0.5,
  repeats: 3,
  connections: [1, 10, 100],
  sizes: [64, 4096],
  httpConnections: [10, 100],
  pipelining: 10,
  httpBodyBytes: 64,
  workUs: 1000,
  cpuConnections: 10,
  churnClients: 10,
  capacity: [100, 1000, 10000],
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
};

const list = (name: string) => (value: unknown) => {
  const items = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(','));
  return items.filter((s) => s.trim() !== '').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new UserError(`--${name} takes whole numbers from 1 up, got ${s}`);
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
  const parser = yargs([...args])
    .scriptName('node --import tsx bench/main.ts')
    .usage(
      '$0 [options]\n\n' +
        'Runs every lab (and a C reference) under the same load, writes the raw results as JSON and\n' +
        'renders them as Markdown. Each lab is started fresh for each scenario, warmed up, measured\n' +
        'and stopped. `make bench` runs it in full, `make bench QUICK=1` quickly, `make report`\n' +
        're-renders the last results without measuring.',
    )
    .options({
      labs: { type: 'string', array: true, describe: `servers to measure: ${ALL_TARGET_IDS.join(', ')} [default: all]`, coerce: names('labs', ALL_TARGET_IDS) },
      scenarios: { type: 'string', array: true, describe: `scenarios to run: ${SCENARIO_IDS.join(', ')} [default: all]`, coerce: names('scenarios', SCENARIO_IDS) },
      quick: { type: 'boolean', default: false, describe: 'short run: every scenario and lab, one repeat, short windows, fewer cells' },
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
      output: { type: 'string', default: 'results/bench.json', describe: 'raw results (JSON), written after measuring, read by --render-only' },
      markdown: { type: 'string', default: 'results/bench.md', describe: 'the rendered report' },
      target: { type: 'string', describe: 'HOST:PORT of a server started elsewhere to measure instead of the labs (server-side figures unavailable)' },
      'target-protocol': { type: 'string', choices: ['echo', 'http'], default: 'echo', describe: 'protocol the --target server speaks; picks the scenarios that fit' },
      pin: { type: 'boolean', default: true, describe: 'pin load generator and server to separate cores with taskset (--no-pin to not)' },
      'render-only': { type: 'boolean', default: false, describe: 'only render --output into --markdown (what `make report` does)' },
    })
    .check((a) => {
      const positive = (name: string, integer: boolean) => {
        const v = a[name];
        if (v === undefined) return;
        if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
          throw new UserError(`--${name} must be a positive ${integer ? 'whole number' : 'number'}, got ${String(v)}`);
        }
      };
      positive('duration', false);
      positive('warmup', false);
      for (const name of ['repeats', 'pipelining', 'http-body-bytes', 'work-us', 'cpu-connections', 'churn-clients']) positive(name, true);
      return true;
    })
    .help();
  const argv = strictly(parser).parseSync();

  const quick = argv.quick;
  const preset = quick ? QUICK : FULL;
  const pick = <T extends number | readonly number[]>(key: Tunable, value: T | undefined): T => value ?? (preset[key] as T);
  const target = argv.target === undefined ? undefined : parseTarget(argv.target);
  const targetProtocol = argv['target-protocol'] as ProtocolName;
  const scenarios = (argv.scenarios as ScenarioId[] | undefined) ?? (target ? scenariosFor(targetProtocol) : [...SCENARIO_IDS]);
  const fromRoot = (file: string) => path.resolve(repoRoot, file);

  return {
    labs: (argv.labs as string[] | undefined) ?? ALL_TARGET_IDS,
    scenarios,
    quick,
    duration: pick('duration', argv.duration),
    warmup: pick('warmup', argv.warmup),
    repeats: pick('repeats', argv.repeats),
    connections: pick('connections', argv.connections as number[] | undefined),
    sizes: pick('sizes', argv.sizes as number[] | undefined),
    httpConnections: pick('httpConnections', argv['http-connections'] as number[] | undefined),
    pipelining: pick('pipelining', argv.pipelining),
    httpBodyBytes: pick('httpBodyBytes', argv['http-body-bytes']),
    workUs: pick('workUs', argv['work-us']),
    cpuConnections: pick('cpuConnections', argv['cpu-connections']),
    churnClients: pick('churnClients', argv['churn-clients']),
    capacity: pick('capacity', argv.capacity as number[] | undefined),
    output: fromRoot(argv.output),
    markdown: fromRoot(argv.markdown),
    target,
    targetProtocol,
    pin: argv.pin,
    renderOnly: argv['render-only'],
  };
}

/** The scenarios a `--target` server can take part in, by the protocol it speaks. */
export function scenariosFor(protocol: ProtocolName): ScenarioId[] {
  // Not 'cpu': its work per request is a flag of our own servers, unknown for a server elsewhere.
  return protocol === 'echo' ? ['echo', 'churn', 'capacity'] : ['http'];
}

export function parseTarget(text: string): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new UserError(`--target must be HOST:PORT, e.g. 192.0.2.7:8080, got ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}
