/**
 * The backlog experiment's command line: `make backlog`, or
 *   node --import tsx bench/backlog.ts [run|measure|render] [options]
 *
 * Plays the same scripted arrival against every lab and records where each waiting client
 * waited (SYN retransmit, kernel accept queue, user space, nowhere); then sweeps the serial
 * lab's listen backlog. `measure` writes results/backlog.json, `render` turns that JSON into
 * results/backlog.md, and `run` (the default) does both. The modules in bench/backlog/ do the work.
 */

import path from 'node:path';
import { writeFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { strictly } from '../../shared/cli.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { defaultPlan, SWEEP_BACKLOGS } from './experiment.js';
import { DEFAULT_SETTINGS, loadReport, measure, saveReport } from './measure.js';
import { rerunIsolated } from './isolate.js';
import { progressLine } from './progress.js';
import { renderReport } from './render.js';
import { LAB_IDS } from '../lib/launch.js';

function parseArgs() {
  return strictly(yargs(hideBin(process.argv))
  .scriptName('node --import tsx bench/backlog.ts')
  .usage(
    '$0 [run|measure|render] [options]\n\n' +
      'Where do clients wait while a server is busy? Client 1 connects and holds its connection; clients 2..K arrive meanwhile. ' +
      `Runs every lab, then the serial lab at backlog ${SWEEP_BACKLOGS.join(', ')}, and reports per client where it waited.`,
  )
  .command('run', 'measure, then render (default)')
  .command('measure', 'play the arrival against the labs and write the JSON')
  .command('render', 'write the Markdown report from the JSON alone')
  .options({
    labs: { type: 'array', string: true, choices: LAB_IDS, default: [...LAB_IDS], describe: 'labs to run' },
    sweep: { type: 'boolean', default: true, describe: `sweep the serial lab's backlog (${SWEEP_BACKLOGS.join(', ')}); --no-sweep skips it` },
    hold: { type: 'number', default: DEFAULT_SETTINGS.holdMs / 1000, describe: 'seconds client 1 holds its connection' },
    clients: { type: 'number', default: DEFAULT_SETTINGS.clients, describe: 'clients in all, client 1 included' },
    'gap-ms': { type: 'number', default: DEFAULT_SETTINGS.gapMs, describe: 'ms between the starts of clients 2..K' },
    'sample-ms': { type: 'number', default: DEFAULT_SETTINGS.sampleMs, describe: 'ms between two samples of /proc' },
    'client-timeout': { type: 'number', default: DEFAULT_SETTINGS.clientTimeoutMs / 1000, describe: 'seconds a client waits before it gives up' },
    json: { type: 'string', default: 'results/backlog.json', describe: 'measurement file' },
    md: { type: 'string', default: 'results/backlog.md', describe: 'report file' },
  })
  .check((a) => {
    const bad = (name: string, value: unknown, min: number, max: number) =>
      typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max ? `--${name} must be a number from ${min} to ${max}` : undefined;
    const problem =
      bad('hold', a.hold, 0.1, 60) ??
      bad('clients', a.clients, 2, 100) ??
      bad('gap-ms', a['gap-ms'], 1, 10_000) ??
      bad('sample-ms', a['sample-ms'], 5, 1_000) ??
      bad('client-timeout', a['client-timeout'], 1, 600) ??
      (Number.isInteger(a.clients) ? undefined : '--clients must be a whole number') ??
      (a._.length > 1 || (a._[0] !== undefined && !['run', 'measure', 'render'].includes(String(a._[0]))) ? `unknown command: ${a._.join(' ')}` : undefined);
    if (problem) throw new UserError(problem);
    return true;
  })
  ).parseSync();
}

async function main(): Promise<void> {
  const argv = parseArgs();
  const command = String(argv._[0] ?? 'run');
  if (command !== 'render') {
    const exitCode = await rerunIsolated((reason) =>
      console.error(`backlog: no network namespace of its own (${reason}); ListenOverflows/ListenDrops will be machine-wide`),
    );
    if (exitCode !== undefined) process.exit(exitCode);
    const settings = {
      ...DEFAULT_SETTINGS,
      holdMs: Math.round(argv.hold * 1000),
      clients: argv.clients,
      gapMs: argv['gap-ms'],
      sampleMs: argv['sample-ms'],
      clientTimeoutMs: Math.round(argv['client-timeout'] * 1000),
    };
    const plans = defaultPlan(argv.labs).filter((p) => argv.sweep || p.kind === 'model');
    // Ctrl-C: abort the clients; each run's `finally` stops its lab before we exit.
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.once('SIGTERM', () => abort.abort());
    const line = progressLine();
    const report = await measure(plans, settings, {
      // `make backlog` says so in BACKLOG_COMMAND, so the report names the command a reader would type.
      command: process.env.BACKLOG_COMMAND ?? `node --import tsx bench/backlog.ts ${process.argv.slice(2).join(' ')}`.trim(),
      signal: abort.signal,
      progress: line.progress,
      finished: line.finished,
    });
    if (abort.signal.aborted) throw new UserError('interrupted; nothing written');
    saveReport(argv.json, report);
    console.error(`backlog: wrote ${path.relative(process.cwd(), argv.json)} (${(report.wallMs / 1000).toFixed(1)} s of measuring)`);
  }
  if (command !== 'measure') {
    writeFileSync(argv.md, renderReport(loadReport(argv.json)));
    console.error(`backlog: wrote ${path.relative(process.cwd(), argv.md)}`);
  }
}

main().catch(exitOnUserError('backlog'));
