/**
 * The benchmark's command-line entry: `make bench` (full), `make bench QUICK=1`, `make report`.
 * See `node --import tsx bench/bench/main.ts --help`.
 *
 * Two steps, kept apart so a report can be re-rendered without measuring again:
 *   1. measure: every scenario against every server, raw figures to results/bench.json;
 *   2. render: results/bench.json to results/bench.md.
 */

import path from 'node:path';
import { hideBin } from 'yargs/helpers';
import { exitOnUserError } from '../../shared/errors.js';
import { planCpus, pinTree } from '../lib/affinity.js';
import { relative } from '../kit/legacy-options.js';
import { readReportFile, writeMarkdown, writeReportFile } from '../kit/report-file.js';
import { machineStamp } from '../kit/stamp.js';
import { publishFigures } from '../figures.js';
import { figures } from './figures.js';
import { parseBenchArgs, type BenchSettings } from './options.js';
import { renderReport } from './render/report.js';
import { migrateBench, SCHEMA_VERSION, type BenchResults } from './results.js';
import { measure, stopEverything } from './run.js';
import { SCENARIOS } from './scenarios/index.js';
import { remoteTarget, targetsById } from './targets.js';

async function main(): Promise<void> {
  const settings = parseBenchArgs(hideBin(process.argv));
  if (settings.renderOnly) return render(settings);

  // The stamp and the plan count cores before this process pins itself to some of them. The load
  // generator runs in this process: pin it before anything else starts.
  const stamp = machineStamp(settings.command);
  const cpus = settings.pin && !settings.target ? planCpus() : undefined;
  if (cpus) pinTree(process.pid, cpus.loadGenerator);
  const targets = settings.target
    ? [remoteTarget(settings.target.host, settings.target.port, settings.targetProtocol)]
    : targetsById(settings.labs);
  const scenarios = SCENARIOS.filter((s) => settings.scenarios.includes(s.id));

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n[bench] ${signal}: stopping every server started\n`);
      void stopEverything().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)); // 128 + signal number
    });
  }

  const results = await measure(settings, scenarios, targets, cpus, stamp);
  writeReportFile(settings.output, results);
  writeMarkdown(settings.markdown, renderReport(results, linkTo(settings)));
  process.stderr.write(`[bench] wrote ${relative(settings.output)} and ${relative(settings.markdown)}\n`);
  publishFigures('bench', settings, figures(results));
}

function render(settings: BenchSettings): void {
  const results = readReportFile<BenchResults>(settings.output, { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench', migrate: migrateBench });
  writeMarkdown(settings.markdown, renderReport(results, linkTo(settings)));
  process.stderr.write(`[bench] rendered ${relative(settings.markdown)} from ${relative(settings.output)}\n`);
  publishFigures('bench', settings, figures(results));
}

/** The JSON file as the report links to it: relative to the report's own folder. */
const linkTo = (settings: BenchSettings) => path.relative(path.dirname(settings.markdown), settings.output);

main().catch(async (error: unknown) => {
  await stopEverything();
  exitOnUserError('bench')(error);
});
