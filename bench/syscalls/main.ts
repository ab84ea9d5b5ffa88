/**
 * `make syscalls`: the system calls and context switches each model makes per round trip and per
 * connection, for every lab (in every variant), plain Node and the C reference, under one fixed
 * workload. Writes results/syscalls.json and renders results/syscalls.md from it alone.
 *
 *   make syscalls                 10 connections × 2,000 round trips, then 50 connections (about a minute)
 *   make syscalls QUICK=1         a short check, into results/quick/
 *   node --import tsx bench/syscalls/main.ts --help
 */

import { hideBin } from 'yargs/helpers';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { labVariants } from '../../labs/index.js';
import { startExecutable, startLab, startNodeScript, type LabProcess } from '../lib/launch.js';
import { describeLabs } from '../kit/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { Progress } from '../kit/progress.js';
import { readReportFile, writeMarkdown, writeReportFile, type ReportFile } from '../kit/report-file.js';
import { machineStamp, renderStamp } from '../kit/stamp.js';
import { buildReference, PLAIN_NODE_SCRIPT, REFERENCE_BINARY } from '../reference/build.js';
import { measureServer } from './measure.js';
import { renderSyscalls, type SyscallResults, type SyscallServer } from './render.js';
import { straceUnavailable } from './trace.js';
import type { Workload } from './workload.js';

export const SYSCALLS_SCHEMA = 1;
export interface SyscallsReport extends ReportFile<'syscalls', typeof SYSCALLS_SCHEMA> {
  readonly results: SyscallResults;
}

const FULL: Workload = { connections: 10, roundTrips: 2000, size: 64, churn: 50 };
const QUICK: Workload = { connections: 4, roundTrips: 200, size: 64, churn: 10 };

/** Flags every lab gets here: quiet, and no timeout that could end a connection the workload still uses. */
const LAB_ARGS = ['--quiet', '--idle-timeout', '600', '--shutdown-timeout', '2'];

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('syscalls', 'Counts system calls (strace -f -c) and context switches (/proc) per round trip and per connection; writes results/syscalls.{json,md}.', args)
    .options({
      'round-trips': { type: 'number', describe: `round trips per connection [default: ${FULL.roundTrips}; quick: ${QUICK.roundTrips}]` },
      connections: { type: 'number', describe: `connections in the round-trip phase [default: ${FULL.connections}; quick: ${QUICK.connections}]` },
      churn: { type: 'number', describe: `connections in the connection phase [default: ${FULL.churn}; quick: ${QUICK.churn}]` },
    })
    .check((a) => checkNumbers(a, { 'round-trips': { min: 1, integer: true }, connections: { min: 1, max: 500, integer: true }, churn: { min: 1, max: 10_000, integer: true } }));
  const argv = parseStrictly(parser, args) as Record<string, unknown>;
  const common = commonSettings('syscalls', argv, args);
  const base = common.quick ? QUICK : FULL;
  const workload: Workload = {
    connections: (argv.connections as number | undefined) ?? base.connections,
    roundTrips: (argv['round-trips'] as number | undefined) ?? base.roundTrips,
    size: base.size,
    churn: (argv.churn as number | undefined) ?? base.churn,
  };
  return { ...common, workload };
}

interface Target {
  readonly id: string;
  readonly label: string;
  readonly model: string;
  /** One client at a time: the round-trip phase runs one connection. */
  readonly serial: boolean;
  readonly start: () => Promise<LabProcess>;
  readonly unavailable?: () => string | undefined;
}

function targets(): Target[] {
  const labs: Target[] = labVariants().map(({ lab, variant }) => ({
    id: variant.name ? `${lab.id} (${variant.name})` : lab.id,
    label: variant.name ? `${lab.label} (${variant.name})` : lab.label,
    model: lab.model,
    serial: lab.traits.kernelQueueOnly,
    start: () => startLab(lab.id, [...variant.args, ...LAB_ARGS]),
  }));
  return [
    ...labs,
    {
      id: 'plain-node',
      label: 'plain Node',
      model: "reference: net.createServer(s => s.on('data', d => s.write(d))), no protocol core",
      serial: false,
      start: () => startNodeScript('plain-node', PLAIN_NODE_SCRIPT),
    },
    {
      id: 'c-epoll',
      label: 'C epoll',
      model: 'reference: one thread, epoll, no protocol parsing (bench/reference/echo-epoll.c)',
      serial: false,
      start: () => startExecutable('c-epoll', REFERENCE_BINARY),
      unavailable: buildReference,
    },
  ];
}

async function measure(settings: ReturnType<typeof parseArgs>): Promise<SyscallsReport> {
  const missing = straceUnavailable();
  if (missing) throw new UserError(`cannot count system calls: ${missing}`);
  const stamp = machineStamp(settings.command);
  const all = targets();
  // Per server: four fresh starts (about a second each) and the phases, slower under strace.
  const perServer = 4 + (settings.workload.connections * settings.workload.roundTrips) / 10_000 + settings.workload.churn / 20;
  const progress = new Progress('syscalls', all.length * perServer);
  const servers: SyscallServer[] = [];
  for (const target of all) {
    const skipped = target.unavailable?.();
    if (skipped) {
      servers.push({ id: target.id, label: target.label, model: target.model, skipped });
      continue;
    }
    progress.step(target.label, perServer);
    const workload = target.serial ? { ...settings.workload, connections: 1 } : settings.workload;
    const counts = await measureServer(target.start, workload, (what) => progress.note(`${target.label}: ${what}`));
    servers.push({ id: target.id, label: target.label, model: target.model, counts });
  }
  progress.done();
  return { experiment: 'syscalls', schema: SYSCALLS_SCHEMA, stamp, labs: describeLabs(), results: { workload: settings.workload, servers } };
}

export function renderReport(report: SyscallsReport): string {
  return [
    '# System calls and context switches per round trip',
    '',
    renderStamp(report.stamp),
    '',
    renderSyscalls(report.results),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  const report = settings.renderOnly
    ? readReportFile<SyscallsReport>(settings.output, { experiment: 'syscalls', schema: SYSCALLS_SCHEMA, measure: 'make syscalls' })
    : await measure(settings);
  if (!settings.renderOnly) writeReportFile(settings.output, report);
  writeMarkdown(settings.markdown, renderReport(report));
  console.error(`[syscalls] wrote ${settings.renderOnly ? '' : `${relative(settings.output)} and `}${relative(settings.markdown)}`);
}

main().catch(exitOnUserError('syscalls'));
