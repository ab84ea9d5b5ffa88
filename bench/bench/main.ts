/**
 * The benchmark's command-line entry: `make bench` (full), `make bench QUICK=1`, `make report`.
 * See `node --import tsx bench/main.ts --help`.
 *
 * Two steps, kept apart so a report can be re-rendered without measuring again:
 *   1. measure: every scenario against every server, raw figures to results/bench.json;
 *   2. render: results/bench.json to results/bench.md.
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hideBin } from 'yargs/helpers';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { planCpus, pinTree } from '../lib/affinity.js';
import { repoRoot } from '../lib/launch.js';
import { machineStamp } from '../pipeline/stamp.js';
import { parseBenchArgs, type BenchSettings } from './options.js';
import { renderReport } from './render/report.js';
import { SCHEMA_VERSION, type BenchResults } from './results.js';
import { measure, stopEverything } from './run.js';
import { SCENARIOS } from './scenarios/index.js';
import { remoteTarget, targetsById } from './targets.js';

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  const settings = parseBenchArgs(args);
  if (settings.renderOnly) return render(settings);

  // The stamp and the plan count cores before this process pins itself to some of them. The load
  // generator runs in this process: pin it before anything else starts.
  const command = process.env.BENCH_COMMAND ?? ['node --import tsx bench/main.ts', ...args].join(' ');
  const stamp = machineStamp(command);
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
  for (const file of [settings.output, settings.markdown]) mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(settings.output, `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(settings.markdown, renderReport(results, linkTo(settings)));
  process.stderr.write(`[bench] wrote ${relative(settings.output)} and ${relative(settings.markdown)}\n`);
}

function render(settings: BenchSettings): void {
  let results: BenchResults;
  try {
    results = JSON.parse(readFileSync(settings.output, 'utf8')) as BenchResults;
  } catch (error) {
    throw new UserError(`cannot read ${relative(settings.output)} (${(error as Error).message}); run \`make bench\` first`);
  }
  if (results.schema !== SCHEMA_VERSION) {
    throw new UserError(`${relative(settings.output)} has schema ${results.schema}, this renderer reads ${SCHEMA_VERSION}; run \`make bench\` again`);
  }
  writeFileSync(settings.markdown, renderReport(results, linkTo(settings)));
  process.stderr.write(`[bench] rendered ${relative(settings.markdown)} from ${relative(settings.output)}\n`);
}

const relative = (file: string) => path.relative(repoRoot, file);
/** The JSON file as the report links to it: relative to the report's own folder. */
const linkTo = (settings: BenchSettings) => path.relative(path.dirname(settings.markdown), settings.output);

main().catch(async (error: unknown) => {
  await stopEverything();
  exitOnUserError('bench')(error);
});
