/**
 * `make soak`: sustained load against every lab, to see memory and descriptors over time.
 *
 * Each lab in turn: autocannon plus connection churn for a set time (default 60 s each), sampled
 * once a second, then a check that the server lets go of everything once the load stops. Writes
 * the raw samples to results/soak.json and renders results/soak.md from them alone
 * (`--render-only` re-renders from the JSON). Not part of `make test`.
 *
 *   make soak                      every lab, 60 s each (about 5 minutes)
 *   make soak QUICK=1              every lab, 5 s each, into results/quick/
 *   make soak SOAK_SECONDS=10      ten seconds per lab
 *   node --import tsx bench/soak/main.ts --help
 */

import { hideBin } from 'yargs/helpers';
import { exitOnUserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { describeLabs } from '../kit/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { Progress } from '../kit/progress.js';
import { readReportFile, writeMarkdown, writeReportFile } from '../kit/report-file.js';
import { machineStamp } from '../kit/stamp.js';
import { soakLab, type LabSoak } from './measure.js';
import { migrateSoakV1, renderSoak, SOAK_SCHEMA, type SoakReport } from './render.js';

/** Seconds of load per lab: a full run long enough for a slow leak to show, a quick one just a check. */
const FULL_SECONDS = 60;
const QUICK_SECONDS = 5;

const LAB_IDS = LABS.map((lab) => lab.id);

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('soak', 'Soaks every lab (or --labs) under autocannon plus connection churn; writes results/soak.{json,md}.', args)
    .options({
      seconds: { type: 'number', describe: `load time per lab [default: ${FULL_SECONDS}; quick: ${QUICK_SECONDS}]` },
      labs: { type: 'array', string: true, default: [...LAB_IDS], choices: LAB_IDS, describe: 'labs to soak' },
      connections: { type: 'number', default: 8, describe: 'autocannon keep-alive connections' },
      churners: { type: 'number', default: 4, describe: 'clients cycling connect, one request, close' },
      'sample-every': { type: 'number', default: 1, describe: 'seconds between samples' },
    })
    .check((a) =>
      checkNumbers(a, {
        seconds: { min: 0, above: true },
        connections: { min: 0, above: true, integer: true },
        churners: { min: 0, above: true, integer: true },
        'sample-every': { min: 0, above: true },
      }),
    );
  const argv = parseStrictly(parser, args) as Record<string, unknown> & ReturnType<typeof parser.parseSync>;
  const common = commonSettings('soak', argv, args);
  const seconds = (argv.seconds as number | undefined) ?? (common.quick ? QUICK_SECONDS : FULL_SECONDS);
  return { ...common, labs: argv.labs as string[], config: { seconds, connections: argv.connections as number, churners: argv.churners as number, sampleMs: (argv['sample-every'] as number) * 1000 } };
}

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  const report = settings.renderOnly
    ? readReportFile<SoakReport>(settings.output, { experiment: 'soak', schema: SOAK_SCHEMA, measure: 'make soak', migrate: migrateSoakV1 })
    : await measure(settings);
  if (!settings.renderOnly) writeReportFile(settings.output, report);
  writeMarkdown(settings.markdown, renderSoak(report));
  console.error(`[soak] wrote ${settings.renderOnly ? '' : `${relative(settings.output)} and `}${relative(settings.markdown)}`);
  for (const run of report.runs) {
    if (!run.settled.atBaseline) console.error(`[soak] ${run.lab} did not return to its baseline after the load`);
  }
}

async function measure(settings: ReturnType<typeof parseArgs>): Promise<SoakReport> {
  const stamp = machineStamp(settings.command);
  // Each lab: its load time, plus a few seconds to start, warm up, settle and stop.
  const progress = new Progress('soak', settings.labs.length * (settings.config.seconds + 3));
  const runs: LabSoak[] = [];
  for (const id of settings.labs) {
    progress.step(`${id} for ${settings.config.seconds} s`, settings.config.seconds + 3);
    runs.push(await soakLab(id, settings.config, (line) => progress.note(line)));
  }
  progress.done();
  return { experiment: 'soak', schema: SOAK_SCHEMA, stamp, labs: describeLabs(settings.labs), config: settings.config, runs };
}

main().catch(exitOnUserError('soak'));
