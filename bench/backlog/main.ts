/**
 * The backlog experiment's command line: `make backlog`, `make backlog QUICK=1`, or
 *   node --import tsx bench/backlog/main.ts [options]
 *
 * Plays the same scripted arrival against every lab and records where each waiting client
 * waited (SYN retransmit, kernel accept queue, user space, nowhere); then sweeps the backlog of
 * the lab whose only queue is the kernel's. Writes results/backlog.json, then renders
 * results/backlog.md from it alone (`--render-only` renders without measuring).
 */

import { UserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { defineExperiment, runMain } from '../kit/experiment.js';
import { describeLabs, kernelQueueLab } from '../kit/labs.js';
import { figures } from './figures.js';
import { defaultPlan, SWEEP_BACKLOGS } from './run.js';
import { rerunIsolated } from './isolate.js';
import { DEFAULT_SETTINGS, measure } from './measure.js';
import { renderReport } from './render.js';
import { BACKLOG_SCHEMA } from './results.js';

const LAB_IDS = LABS.map((lab) => lab.id);
const SWEPT = kernelQueueLab(LABS)?.id ?? 'none';

export const backlog = defineExperiment({
  name: 'backlog',
  title: 'The backlog experiment: where clients wait while a server is busy',
  about:
    'Where do clients wait while a server is busy? Client 1 connects and holds its connection; clients 2..K arrive meanwhile. ' +
    `Runs every lab, then ${SWEPT} (the lab whose only queue is the kernel's) at backlog ${SWEEP_BACKLOGS.join(', ')}, and reports per client where it waited.`,
  schema: BACKLOG_SCHEMA,
  options: {
    labs: { type: 'list', default: LAB_IDS, choices: LAB_IDS, describe: 'labs to run' },
    sweep: { type: 'boolean', default: true, describe: `sweep the backlog of ${SWEPT} (${SWEEP_BACKLOGS.join(', ')}); --no-sweep skips it` },
    // A quick run holds client 1 for one second: enough for the others to queue behind it.
    hold: { type: 'number', default: DEFAULT_SETTINGS.holdMs / 1000, quick: 1, min: 0.1, max: 60, describe: 'seconds client 1 holds its connection' },
    clients: { type: 'number', default: DEFAULT_SETTINGS.clients, min: 2, max: 100, integer: true, describe: 'clients in all, client 1 included' },
    'gap-ms': { type: 'number', default: DEFAULT_SETTINGS.gapMs, min: 1, max: 10_000, describe: 'ms between the starts of clients 2..K' },
    'sample-ms': { type: 'number', default: DEFAULT_SETTINGS.sampleMs, min: 5, max: 1_000, describe: 'ms between two samples of /proc' },
    'client-timeout': { type: 'number', default: DEFAULT_SETTINGS.clientTimeoutMs / 1000, min: 1, max: 600, describe: 'seconds a client waits before it gives up' },
  },
  render: renderReport,
  figures,
  async measure(options, run) {
    const exitCode = await rerunIsolated((reason) => console.error(`[backlog] no network namespace of its own (${reason}); ListenOverflows/ListenDrops will be machine-wide`));
    if (exitCode !== undefined) process.exit(exitCode);
    const settings = {
      ...DEFAULT_SETTINGS,
      holdMs: Math.round(options.hold * 1000),
      clients: options.clients,
      gapMs: options['gap-ms'],
      sampleMs: options['sample-ms'],
      clientTimeoutMs: Math.round(options['client-timeout'] * 1000),
    };
    const plans = defaultPlan(describeLabs(options.labs)).filter((p) => options.sweep || p.kind === 'model');
    // Ctrl-C: abort the clients; each run's `finally` stops its lab before we exit.
    const abort = new AbortController();
    process.once('SIGINT', () => abort.abort());
    process.once('SIGTERM', () => abort.abort());
    const body = await measure(plans, settings, run.progress, abort.signal);
    if (abort.signal.aborted) throw new UserError('interrupted; nothing written');
    return body;
  },
});

runMain(backlog, import.meta.url);
