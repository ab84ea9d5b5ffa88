/**
 * `make files`: static files over HTTP from every lab that serves them, sendfile(2) against
 * read/write: for files of 4 KiB, 1 MiB and 64 MiB, at 1 and 50 connections, requests/s, MB/s,
 * server CPU per MiB sent (and wrk's own), then the system calls per request under strace.
 * Writes results/files.json and renders results/files.md from it alone.
 *
 *   make files              3 s runs after 1 s of warm-up (about 7 minutes)
 *   make files QUICK=1      2 s runs, no warm-up, into results/quick/ (about 3 minutes)
 *   node --import tsx bench/files/main.ts --help
 *
 * Needs wrk (apt-get install wrk) and strace.
 */

import { hideBin } from 'yargs/helpers';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { describeLabs } from '../kit/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { Progress } from '../kit/progress.js';
import { readReportFile, writeMarkdown, writeReportFile, type ReportFile } from '../kit/report-file.js';
import { machineStamp, renderStamp } from '../kit/stamp.js';
import { straceUnavailable } from '../syscalls/trace.js';
import { fileTargets, KiB, makeRoot, measureTarget, MiB, plannedSeconds, type Plan, type TargetResult } from './measure.js';
import { renderFiles, type FilesResults } from './render.js';
import { wrkUnavailable } from './wrk.js';

export const FILES_SCHEMA = 1;
export interface FilesReport extends ReportFile<'files', typeof FILES_SCHEMA> {
  readonly results: FilesResults;
}

const SIZES = [4 * KiB, MiB, 64 * MiB];
const CONNECTIONS = [1, 50];
const FULL: Plan = { sizes: SIZES, connections: CONNECTIONS, seconds: 3, warmupSeconds: 1, tracedSeconds: 2 };
const QUICK: Plan = { sizes: SIZES, connections: CONNECTIONS, seconds: 2, warmupSeconds: 0, tracedSeconds: 1 };

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('files', 'Static files from every lab: sendfile against read/write, throughput, CPU per MiB and system calls per request; writes results/files.{json,md}.', args)
    .options({
      seconds: { type: 'number', describe: `seconds per measured run [default: ${FULL.seconds}; quick: ${QUICK.seconds}]` },
      labs: { type: 'string', describe: 'comma-separated lab ids to measure (default: every lab that serves files)' },
    })
    .check((a) => checkNumbers(a, { seconds: { min: 1, max: 600, integer: true } }));
  const argv = parseStrictly(parser) as Record<string, unknown>;
  const common = commonSettings('files', argv, args);
  const base = common.quick ? QUICK : FULL;
  const labs = typeof argv.labs === 'string' ? argv.labs.split(',').map((id) => id.trim()) : undefined;
  return { ...common, plan: { ...base, seconds: (argv.seconds as number | undefined) ?? base.seconds }, labs };
}

async function measure(settings: ReturnType<typeof parseArgs>): Promise<FilesReport> {
  const missing = wrkUnavailable() ?? straceUnavailable();
  if (missing) throw new UserError(`cannot run the files experiment: ${missing}`);
  const targets = fileTargets((lab) => settings.labs === undefined || settings.labs.includes(lab.id));
  if (targets.length === 0) throw new UserError(`--labs ${settings.labs?.join(',')}: no lab there serves files`);
  const stamp = machineStamp(settings.command);
  const progress = new Progress('files', targets.length * plannedSeconds(settings.plan));
  progress.step(`writing ${SIZES.length} files of random bytes`);
  const tree = makeRoot(settings.plan.sizes);
  const results: TargetResult[] = [];
  try {
    for (const target of targets) {
      progress.step(target.label, plannedSeconds(settings.plan));
      results.push(await measureTarget(target, tree.root, settings.plan, progress));
    }
  } finally {
    tree.remove();
  }
  progress.done();
  return {
    experiment: 'files',
    schema: FILES_SCHEMA,
    stamp,
    labs: describeLabs([...new Set(targets.map((t) => t.labId))]),
    results: { plan: settings.plan, tool: 'wrk', targets: results },
  };
}

export function renderReport(report: FilesReport): string {
  return ['# Static files: sendfile against read/write', '', renderStamp(report.stamp), '', renderFiles(report.results), ''].join('\n');
}

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  const report = settings.renderOnly
    ? readReportFile<FilesReport>(settings.output, { experiment: 'files', schema: FILES_SCHEMA, measure: 'make files' })
    : await measure(settings);
  if (!settings.renderOnly) writeReportFile(settings.output, report);
  writeMarkdown(settings.markdown, renderReport(report));
  console.error(`[files] wrote ${settings.renderOnly ? '' : `${relative(settings.output)} and `}${relative(settings.markdown)}`);
}

main().catch(exitOnUserError('files'));
