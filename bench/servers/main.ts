/**
 * The benchmark's command-line entry: `make bench` (full), `make bench QUICK=1`, `make report`.
 * See `node --import tsx bench/servers/main.ts --help`.
 *
 * Two steps, kept apart so a report can be re-rendered without measuring again:
 *   1. measure: every scenario against every server, raw figures to results/bench.json;
 *   2. render: results/bench.json to results/bench.md.
 */

import { planCpus, pinTree } from '../../harness/affinity.js';
import { defineExperiment, runMain } from '../kit/experiment.js';
import { figures } from './figures.js';
import { BENCH_ABOUT, BENCH_OPTIONS, benchSettings } from './options.js';
import { renderReport } from './render/report.js';
import { migrateBench, SCHEMA_VERSION } from './results.js';
import { measure, stopEverything } from './run.js';
import { SCENARIOS } from './scenarios/index.js';
import { remoteTarget, targetsById } from './targets.js';

export const bench = defineExperiment({
  name: 'bench',
  title: 'Benchmark: every I/O model under the same load',
  about: BENCH_ABOUT,
  schema: SCHEMA_VERSION,
  migrate: migrateBench,
  options: BENCH_OPTIONS,
  render: renderReport,
  figures,
  stop: stopEverything,
  async measure(options, run) {
    const settings = benchSettings(options);
    // The load generator runs in this process: pin it before anything else starts (the kit took
    // the stamp first, which counts the cores before this process is pinned to some of them).
    const cpus = settings.pin && !settings.target ? planCpus() : undefined;
    if (cpus) pinTree(process.pid, cpus.loadGenerator);
    const targets = settings.target ? [remoteTarget(settings.target.host, settings.target.port, settings.targetProtocol)] : targetsById(settings.labs);
    const { experiment: _e, schema: _s, stamp: _t, ...body } = await measure(settings, SCENARIOS.filter((s) => settings.scenarios.includes(s.id)), targets, cpus, run.stamp);
    return body;
  },
});

runMain(bench, import.meta.url);
