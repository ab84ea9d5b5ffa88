/**
 * `make balance`: how lab 06's policies (handoff, shared, reuseport) spread connections among its
 * event loops, what a stalled loop does to new clients under each, and how requests/s scale with
 * the number of loops beside lab 04 (one loop) and lab 03 (a thread pool). Writes
 * results/balance.json and renders results/balance.md from it alone.
 *
 *   make balance               the full run (about 2 to 3 minutes)
 *   make balance QUICK=1       a short check, into results/quick/
 *   node --import tsx bench/balance/main.ts --help
 */

import { defineExperiment, runMain, type Body, type Run } from '../kit/experiment.js';
import { describeLab } from '../kit/labs.js';
import type { Settings } from '../kit/command-line.js';
import { findLabs } from './compared-labs.js';
import { renderBalanceReport } from './render.js';
import { BALANCE_SCHEMA, type Arrival, type BalanceReport, type ScalingRun, type SpreadRun, type StallRun } from './results.js';
import { measureScaling, type ScalingTarget } from './scaling.js';
import { measureSpread } from './spread.js';
import { measureStall } from './stall.js';

/**
 * Worker counts of the spread step besides the machine's cores: four loops on two cores show the
 * shared socket's wake-up order more plainly than two (the lab README's 18/9/9/4).
 */
const EXTRA_SPREAD_WORKERS = 4;

const ARRIVALS: Readonly<Record<'full' | 'quick', Arrival[]>> = {
  full: [
    { name: 'light', connections: 200, overMs: 2000 },
    { name: 'burst', connections: 1000, overMs: 0 },
  ],
  quick: [
    { name: 'light', connections: 40, overMs: 1000 },
    { name: 'burst', connections: 200, overMs: 0 },
  ],
};

const OPTIONS = {
  'stall-work-us': { type: 'number', default: 100_000, min: 1000, max: 1_000_000, integer: true, describe: 'CPU work per request in the stall step, µs' },
  // 40 requests of 100 ms: a 4-second stall, 16 probes at one per 250 ms.
  'stall-requests': { type: 'number', default: 40, quick: 10, min: 2, max: 200, integer: true, describe: 'requests the staller pipelines in one write' },
  'probe-interval': { type: 'number', default: 250, min: 10, max: 10_000, describe: 'ms between two probes in the stall step (the free loop must stay under half busy)' },
  'scaling-seconds': { type: 'number', default: 5, quick: 1.5, min: 0.5, max: 120, describe: 'measured seconds per scaling run' },
  'scaling-work-us': { type: 'number', default: 1000, min: 0, max: 100_000, integer: true, describe: 'CPU work per request in the scaling step, µs' },
} as const;

async function measure(settings: Settings<typeof OPTIONS>, run: Run): Promise<Body<BalanceReport>> {
  const { loops, oneLoop, pool } = findLabs();
  const cores = run.stamp.cores;
  const arrivals = ARRIVALS[settings.quick ? 'quick' : 'full'];
  const warmupMs = settings.quick ? 500 : 1000;
  const policies = loops.variants;
  const spreadWorkers = [...new Set([Math.max(2, cores), EXTRA_SPREAD_WORKERS])].sort((a, b) => a - b);
  const stallSettings = { workers: Math.max(2, cores), workUs: settings['stall-work-us'], requests: settings['stall-requests'], probeIntervalMs: settings['probe-interval'], slowFactor: 5 };
  const scalingSettings = { workUs: settings['scaling-work-us'], connections: 10, durationMs: settings['scaling-seconds'] * 1000, cores };
  const targets: ScalingTarget[] = [
    ...policies.flatMap((policy) =>
      Array.from({ length: cores }, (_, i) => ({ lab: loops.id, label: loops.label, policy: policy.name, cores: i + 1, args: [loops.coresFlag!, String(i + 1), ...policy.args] })),
    ),
    { lab: oneLoop.id, label: oneLoop.label, cores: 1, args: [] },
    { lab: pool.id, label: pool.label, cores, args: [pool.coresFlag!, String(cores)] },
  ];

  const spreadSeconds = (a: Arrival) => 1.5 + a.overMs / 1000 + a.connections / 1000;
  const stallSeconds = 2 + (stallSettings.requests * stallSettings.workUs) / 1e6;
  const scalingSeconds = 1.5 + warmupMs / 1000 + settings['scaling-seconds'];
  const planned =
    policies.length * spreadWorkers.length * arrivals.reduce((s, a) => s + spreadSeconds(a), 0) + policies.length * stallSeconds + targets.length * scalingSeconds;
  const progress = run.progress(planned);
  const spread: SpreadRun[] = [];
  for (const workers of spreadWorkers) {
    for (const arrival of arrivals) {
      for (const policy of policies) {
        progress.step(`spread: ${policy.name}, ${workers} workers, ${arrival.connections} connections (${arrival.name})`, spreadSeconds(arrival));
        const run = await measureSpread(loops.id, policy, workers, arrival);
        if (run.failed > 0) progress.note(`spread ${policy.name} ${workers} workers ${arrival.name}: ${run.failed} connections failed`);
        spread.push(run);
      }
    }
  }
  const stall: StallRun[] = [];
  for (const policy of policies) {
    progress.step(`stall: ${policy.name}, ${stallSettings.requests} × ${stallSettings.workUs / 1000} ms on one loop`, stallSeconds);
    stall.push(await measureStall(loops.id, policy, stallSettings));
  }
  const scaling: ScalingRun[] = [];
  for (const target of targets) {
    progress.step(`scaling: ${target.label}${target.policy ? ` (${target.policy})` : ''}, ${target.cores} ${target.lab === pool.id ? 'threads' : 'workers'}`, scalingSeconds);
    scaling.push(await measureScaling(target, scalingSettings, warmupMs));
  }
  progress.done();
  return {
    labs: [loops, oneLoop, pool].map(describeLab),
    results: {
      lab: { id: loops.id, label: loops.label },
      policies: policies.map((p) => p.name),
      spread,
      stall: { settings: stallSettings, runs: stall },
      scaling: { settings: scalingSettings, runs: scaling },
    },
  };
}

export const balance = defineExperiment({
  name: 'balance',
  title: 'Balancing connections across event loops',
  about: "Lab 06's balance policies: spread, a stalled loop, scaling; writes results/balance.{json,md}.",
  schema: BALANCE_SCHEMA,
  options: OPTIONS,
  render: renderBalanceReport,
  measure,
});

runMain(balance, import.meta.url);
