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

import { hideBin } from 'yargs/helpers';
import { exitOnUserError } from '../../shared/errors.js';
import { stopAllLabs } from '../lib/launch.js';
import { describeLab } from '../kit/labs.js';
import { findLabs } from './labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { Progress } from '../kit/progress.js';
import { writeMarkdown, writeReportFile } from '../kit/report-file.js';
import { machineStamp } from '../kit/stamp.js';
import { renderBalanceReport } from './render.js';
import { BALANCE_SCHEMA, readBalanceReport, type Arrival, type BalanceReport, type ScalingRun, type SpreadRun, type StallRun } from './results.js';
import { measureScaling, type ScalingTarget } from './scaling.js';
import { measureSpread } from './spread.js';
import { measureStall } from './stall.js';

/**
 * Worker counts of the spread step besides the machine's cores: four loops on two cores show the
 * shared socket's wake-up order more plainly than two (the lab README's 18/9/9/4).
 */
const EXTRA_SPREAD_WORKERS = 4;

const FULL = {
  arrivals: [
    { name: 'light', connections: 200, overMs: 2000 },
    { name: 'burst', connections: 1000, overMs: 0 },
  ] satisfies Arrival[],
  // 40 requests of 100 ms: a 4-second stall, 16 probes at one per 250 ms.
  stallRequests: 40,
  scalingSeconds: 5,
  warmupMs: 1000,
};
const QUICK = {
  arrivals: [
    { name: 'light', connections: 40, overMs: 1000 },
    { name: 'burst', connections: 200, overMs: 0 },
  ] satisfies Arrival[],
  stallRequests: 10,
  scalingSeconds: 1.5,
  warmupMs: 500,
};

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('balance', "Lab 06's balance policies: spread, a stalled loop, scaling; writes results/balance.{json,md}.", args)
    .options({
      'stall-work-us': { type: 'number', default: 100_000, describe: 'CPU work per request in the stall step, µs' },
      'stall-requests': { type: 'number', describe: `requests the staller pipelines in one write [default: ${FULL.stallRequests}; quick: ${QUICK.stallRequests}]` },
      'probe-interval': { type: 'number', default: 250, describe: 'ms between two probes in the stall step (the free loop must stay under half busy)' },
      'scaling-seconds': { type: 'number', describe: `measured seconds per scaling run [default: ${FULL.scalingSeconds}; quick: ${QUICK.scalingSeconds}]` },
      'scaling-work-us': { type: 'number', default: 1000, describe: 'CPU work per request in the scaling step, µs' },
    })
    .check((a) =>
      checkNumbers(a, {
        'stall-work-us': { min: 1000, max: 1_000_000, integer: true },
        'stall-requests': { min: 2, max: 200, integer: true },
        'probe-interval': { min: 10, max: 10_000 },
        'scaling-seconds': { min: 0.5, max: 120 },
        'scaling-work-us': { min: 0, max: 100_000, integer: true },
      }),
    );
  const argv = parseStrictly(parser, args) as Record<string, unknown>;
  const common = commonSettings('balance', argv, args);
  const base = common.quick ? QUICK : FULL;
  return {
    ...common,
    arrivals: base.arrivals,
    warmupMs: base.warmupMs,
    stallWorkUs: argv['stall-work-us'] as number,
    stallRequests: (argv['stall-requests'] as number | undefined) ?? base.stallRequests,
    probeIntervalMs: argv['probe-interval'] as number,
    scalingSeconds: (argv['scaling-seconds'] as number | undefined) ?? base.scalingSeconds,
    scalingWorkUs: argv['scaling-work-us'] as number,
  };
}

async function measure(settings: ReturnType<typeof parseArgs>): Promise<BalanceReport> {
  const { loops, oneLoop, pool } = findLabs();
  const stamp = machineStamp(settings.command);
  const cores = stamp.cores;
  const policies = loops.variants;
  const spreadWorkers = [...new Set([Math.max(2, cores), EXTRA_SPREAD_WORKERS])].sort((a, b) => a - b);
  const stallSettings = { workers: Math.max(2, cores), workUs: settings.stallWorkUs, requests: settings.stallRequests, probeIntervalMs: settings.probeIntervalMs, slowFactor: 5 };
  const scalingSettings = { workUs: settings.scalingWorkUs, connections: 10, durationMs: settings.scalingSeconds * 1000, cores };
  const targets: ScalingTarget[] = [
    ...policies.flatMap((policy) =>
      Array.from({ length: cores }, (_, i) => ({ lab: loops.id, label: loops.label, policy: policy.name, cores: i + 1, args: [loops.coresFlag!, String(i + 1), ...policy.args] })),
    ),
    { lab: oneLoop.id, label: oneLoop.label, cores: 1, args: [] },
    { lab: pool.id, label: pool.label, cores, args: [pool.coresFlag!, String(cores)] },
  ];

  const spreadSeconds = (a: Arrival) => 1.5 + a.overMs / 1000 + a.connections / 1000;
  const stallSeconds = 2 + (stallSettings.requests * stallSettings.workUs) / 1e6;
  const scalingSeconds = 1.5 + settings.warmupMs / 1000 + settings.scalingSeconds;
  const planned =
    policies.length * spreadWorkers.length * settings.arrivals.reduce((s, a) => s + spreadSeconds(a), 0) + policies.length * stallSeconds + targets.length * scalingSeconds;
  const progress = new Progress('balance', planned);
  try {
    const spread: SpreadRun[] = [];
    for (const workers of spreadWorkers) {
      for (const arrival of settings.arrivals) {
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
      scaling.push(await measureScaling(target, scalingSettings, settings.warmupMs));
    }
    progress.done();
    return {
      experiment: 'balance',
      schema: BALANCE_SCHEMA,
      stamp,
      labs: [loops, oneLoop, pool].map(describeLab),
      results: {
        lab: { id: loops.id, label: loops.label },
        policies: policies.map((p) => p.name),
        spread,
        stall: { settings: stallSettings, runs: stall },
        scaling: { settings: scalingSettings, runs: scaling },
      },
    };
  } finally {
    await stopAllLabs();
  }
}

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  const report = settings.renderOnly ? readBalanceReport(settings.output) : await measure(settings);
  if (!settings.renderOnly) writeReportFile(settings.output, report);
  writeMarkdown(settings.markdown, renderBalanceReport(report));
  console.error(`[balance] wrote ${settings.renderOnly ? '' : `${relative(settings.output)} and `}${relative(settings.markdown)}`);
}

main().catch(exitOnUserError('balance'));
