/**
 * The backlog experiment's command line: `make backlog`, `make backlog QUICK=1`, or
 *   node --import tsx bench/backlog/main.ts [options]
 *
 * Plays the same scripted arrival against every lab and records where each waiting client
 * waited (SYN retransmit, kernel accept queue, user space, nowhere); then sweeps the backlog of
 * the lab whose only queue is the kernel's. Writes results/backlog.json, then renders
 * results/backlog.md from it alone (`--render-only` renders without measuring).
 */

import { hideBin } from 'yargs/helpers';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { describeLabs, kernelQueueLab } from '../kit/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { writeMarkdown, writeReportFile } from '../kit/report-file.js';
import { publishFigures } from '../figures.js';
import { figures } from './figures.js';
import { defaultPlan, SWEEP_BACKLOGS } from './experiment.js';
import { rerunIsolated } from './isolate.js';
import { DEFAULT_SETTINGS, loadReport, measure } from './measure.js';
import { progressLine } from './progress.js';
import { renderReport } from './render.js';

const LAB_IDS = LABS.map((lab) => lab.id);
/** A quick run holds client 1 for one second: enough for the others to queue behind it. */
const QUICK_HOLD_S = 1;

function parseArgs(args: readonly string[]) {
  const swept = kernelQueueLab(LABS)?.id ?? 'none';
  const parser = experimentParser(
    'backlog',
    'Where do clients wait while a server is busy? Client 1 connects and holds its connection; clients 2..K arrive meanwhile. ' +
      `Runs every lab, then ${swept} (the lab whose only queue is the kernel's) at backlog ${SWEEP_BACKLOGS.join(', ')}, and reports per client where it waited.`,
    args,
  )
    .options({
      labs: { type: 'array', string: true, choices: LAB_IDS, default: [...LAB_IDS], describe: 'labs to run' },
      sweep: { type: 'boolean', default: true, describe: `sweep the backlog of ${swept} (${SWEEP_BACKLOGS.join(', ')}); --no-sweep skips it` },
      hold: { type: 'number', describe: `seconds client 1 holds its connection [default: ${DEFAULT_SETTINGS.holdMs / 1000}; quick: ${QUICK_HOLD_S}]` },
      clients: { type: 'number', default: DEFAULT_SETTINGS.clients, describe: 'clients in all, client 1 included' },
      'gap-ms': { type: 'number', default: DEFAULT_SETTINGS.gapMs, describe: 'ms between the starts of clients 2..K' },
      'sample-ms': { type: 'number', default: DEFAULT_SETTINGS.sampleMs, describe: 'ms between two samples of /proc' },
      'client-timeout': { type: 'number', default: DEFAULT_SETTINGS.clientTimeoutMs / 1000, describe: 'seconds a client waits before it gives up' },
    })
    .check((a) =>
      checkNumbers(a, {
        hold: { min: 0.1, max: 60 },
        clients: { min: 2, max: 100, integer: true },
        'gap-ms': { min: 1, max: 10_000 },
        'sample-ms': { min: 5, max: 1_000 },
        'client-timeout': { min: 1, max: 600 },
      }),
    );
  const argv = parseStrictly(parser, args) as Record<string, unknown> & ReturnType<typeof parser.parseSync>;
  const common = commonSettings('backlog', argv, args);
  const hold = (argv.hold as number | undefined) ?? (common.quick ? QUICK_HOLD_S : DEFAULT_SETTINGS.holdMs / 1000);
  return {
    ...common,
    labs: argv.labs as string[],
    sweep: argv.sweep === true,
    settings: {
      ...DEFAULT_SETTINGS,
      holdMs: Math.round(hold * 1000),
      clients: argv.clients as number,
      gapMs: argv['gap-ms'] as number,
      sampleMs: argv['sample-ms'] as number,
      clientTimeoutMs: Math.round((argv['client-timeout'] as number) * 1000),
    },
  };
}

async function main(): Promise<void> {
  const options = parseArgs(hideBin(process.argv));
  if (!options.renderOnly) {
    const exitCode = await rerunIsolated((reason) =>
      console.error(`[backlog] no network namespace of its own (${reason}); ListenOverflows/ListenDrops will be machine-wide`),
    );
    if (exitCode !== undefined) process.exit(exitCode);
    const plans = defaultPlan(describeLabs(options.labs)).filter((p) => options.sweep || p.kind === 'model');
    // Ctrl-C: abort the clients; each run's `finally` stops its lab before we exit.
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.once('SIGTERM', () => abort.abort());
    const line = progressLine(plans.length, options.settings.holdMs);
    const report = await measure(plans, options.settings, { command: options.command, signal: abort.signal, progress: line.progress, finished: line.finished });
    if (abort.signal.aborted) throw new UserError('interrupted; nothing written');
    writeReportFile(options.output, report);
    console.error(`[backlog] wrote ${relative(options.output)} (${(report.wallMs / 1000).toFixed(1)} s of measuring)`);
  }
  const report = loadReport(options.output);
  writeMarkdown(options.markdown, renderReport(report));
  console.error(`[backlog] wrote ${relative(options.markdown)}`);
  publishFigures('backlog', options, figures(report));
}

main().catch(exitOnUserError('backlog'));
