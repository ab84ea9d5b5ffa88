/**
 * `make limits`: each model under cgroup CPU and memory limits. Servers run in containers with
 * CPU quotas and memory caps; this shows what each model makes of them:
 *   - CPU: the same paced load (a fixed request rate, not as fast as possible) with no limit, then
 *     with quotas of 1, 0.5 and 0.25 core at the kernel's default period (100 ms) and at a shorter
 *     one (10 ms): latency, throttled periods and throttled time from cpu.stat, achieved rate;
 *   - memory: a cap, and clients added until the server fails or a ceiling is reached.
 * Each lab runs in a cgroup made for it and removed after it (also on Ctrl-C and on failure); the
 * load generator stays outside. Writes results/limits.json and renders results/limits.md and its
 * pictures (results/limits-*.svg) from it alone (`--render-only`).
 *
 *   make limits                the full run (about 9 minutes)
 *   make limits QUICK=1        a short check (about 3 minutes), into results/quick/
 *   node --import tsx bench/limits/main.ts --help
 *
 * Needs a writable cgroup (root: `sudo make limits`, or `sudo systemd-run --scope make limits`);
 * without one it says so in one line and exits with status 2.
 */

import os from 'node:os';
import { hideBin } from 'yargs/helpers';
import { LABS, labVariants } from '../../labs/index.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { stopAllLabs } from '../lib/launch.js';
import { describeLabs } from '../kit/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../kit/legacy-options.js';
import { Progress } from '../kit/progress.js';
import { readReportFile, writeReportFile } from '../kit/report-file.js';
import { machineStamp } from '../kit/stamp.js';
import { probeCgroups, removeAllGroups, removeGroupsOnExit, removeStaleGroups } from './cgroup.js';
import { measureCpuLab, type CpuCase, type CpuLabRun } from './cpu.js';
import { measureMemoryLab, type MemoryLabRun } from './memory.js';
import { LIMITS_SCHEMA, writeLimitsReport, type LimitsReport } from './render.js';

const LAB_IDS = LABS.map((lab) => lab.id);

/** The kernel's default CFS period, and a shorter one (a tenth) that cuts the longest stall. */
const DEFAULT_PERIOD_US = 100_000;
const SHORT_PERIOD_US = 10_000;
const QUOTAS = [1, 0.5, 0.25];

const FULL = { seconds: 5, ceiling: 1000, memorySeconds: 60, allVariants: true };
const QUICK = { seconds: 2, ceiling: 200, memorySeconds: 20, allVariants: false };

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('limits', 'Runs every lab (or --labs) in a cgroup under CPU quotas and a memory cap; writes results/limits.{json,md} and results/limits-*.svg.', args)
    .options({
      labs: { type: 'array', string: true, default: [...LAB_IDS], choices: LAB_IDS, describe: 'labs to run' },
      parts: { type: 'array', string: true, default: ['cpu', 'memory'], choices: ['cpu', 'memory'], describe: 'which halves to run' },
      'all-variants': { type: 'boolean', describe: `every registry variant in the CPU cases [default: ${FULL.allVariants}; quick: ${QUICK.allVariants}]` },
      seconds: { type: 'number', describe: `seconds of load per CPU case [default: ${FULL.seconds}; quick: ${QUICK.seconds}]` },
      rate: { type: 'number', default: 250, describe: 'requests per second offered (Poisson arrivals, the same schedule in every case)' },
      'work-us': { type: 'number', default: 1000, describe: 'CPU work per request in the server (its --work-us)' },
      connections: { type: 'number', default: 4, describe: 'keep-alive connections the paced load uses (1 for a serial lab)' },
      quotas: { type: 'array', number: true, default: QUOTAS, describe: 'CPU quotas, in cores, each at both periods' },
      periods: { type: 'array', number: true, default: [DEFAULT_PERIOD_US / 1000, SHORT_PERIOD_US / 1000], describe: 'CFS periods, in ms' },
      'cap-mib': { type: 'number', default: 256, describe: 'memory cap of each lab\'s group, MiB' },
      ceiling: { type: 'number', describe: `most clients per lab in the memory half [default: ${FULL.ceiling}; quick: ${QUICK.ceiling}]` },
    })
    .check((a) =>
      checkNumbers(a, {
        seconds: { min: 0, above: true },
        rate: { min: 0, above: true },
        'work-us': { min: 0, integer: true },
        connections: { min: 1, max: 100, integer: true },
        'cap-mib': { min: 32 },
        ceiling: { min: 1, integer: true },
      }),
    )
    .check((a) => {
      const bad = (a.quotas as number[]).find((q) => !(q > 0)) ?? (a.periods as number[]).find((p) => !(p >= 1 && p <= 1000));
      if (bad !== undefined) throw new UserError(`--quotas must be positive and --periods from 1 to 1000 ms, got ${bad}`);
      return true;
    });
  const argv = parseStrictly(parser) as Record<string, unknown> & ReturnType<typeof parser.parseSync>;
  const common = commonSettings('limits', argv, args);
  const size = common.quick ? QUICK : FULL;
  const periods = (argv.periods as number[]).map((ms) => ms * 1000);
  const cases: CpuCase[] = [{ cores: null, periodUs: DEFAULT_PERIOD_US }, ...periods.flatMap((periodUs) => (argv.quotas as number[]).map((cores) => ({ cores, periodUs })))];
  return {
    ...common,
    labs: argv.labs as string[],
    parts: argv.parts as ('cpu' | 'memory')[],
    allVariants: (argv['all-variants'] as boolean | undefined) ?? size.allVariants,
    cpu: {
      cases,
      seconds: (argv.seconds as number | undefined) ?? size.seconds,
      ratePerSec: argv.rate as number,
      workUs: argv['work-us'] as number,
      connections: argv.connections as number,
      bucketMs: 100,
      cores: os.availableParallelism(),
    },
    memory: { capBytes: (argv['cap-mib'] as number) * 2 ** 20, ceiling: (argv.ceiling as number | undefined) ?? size.ceiling, maxSeconds: size.memorySeconds, probeTimeoutMs: 10_000 },
  };
}

type Settings = ReturnType<typeof parseArgs>;

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  if (settings.renderOnly) {
    const report = readReportFile<LimitsReport>(settings.output, { experiment: 'limits', schema: LIMITS_SCHEMA, measure: 'make limits' });
    const written = await writeLimitsReport(report, settings.markdown);
    console.error(`[limits] wrote ${[settings.markdown, ...written].map(relative).join(', ')}`);
    return;
  }
  const probe = probeCgroups();
  if (!probe.setup) throw new UserError(`${probe.problem}; see bench/README.md (make limits) for how to run it`);
  console.error(`[limits] ${probe.setup.line}`);
  removeGroupsOnExit((signal) => console.error(`[limits] ${signal}: stopping; removing the cgroups made (${removeAllGroups().length ? 'some would not go' : 'all removed'})`));
  for (const stale of removeStaleGroups(probe.setup)) console.error(`[limits] removed ${stale}, left by an earlier run that was killed`);

  const stamp = machineStamp(settings.command);
  const cpuTargets = settings.parts.includes('cpu')
    ? labVariants((lab) => settings.labs.includes(lab.id))
        .filter(({ lab, variant }) => settings.allVariants || variant === lab.variants[0])
        .map(({ lab, variant, title }) => ({
          lab: lab.id,
          variant: variant.name,
          title,
          args: [...variant.args, ...(lab.coresFlag ? [lab.coresFlag, String(settings.cpu.cores)] : [])],
          connections: lab.traits.kernelQueueOnly ? 1 : settings.cpu.connections,
        }))
    : [];
  const memoryTargets = settings.parts.includes('memory') ? LABS.filter((lab) => settings.labs.includes(lab.id)).map((lab) => ({ lab: lab.id, title: lab.id, args: [...lab.variants[0]!.args] })) : [];
  // Each CPU case: its load, plus about a second to connect, warm up and drain; a lab ~2 s to start.
  const cpuPlan = 2 + settings.cpu.cases.length * (settings.cpu.seconds + 1);
  const memoryPlan = settings.memory.maxSeconds / 3;
  const progress = new Progress('limits', cpuTargets.length * cpuPlan + memoryTargets.length * memoryPlan);

  const cpu: CpuLabRun[] = [];
  const memory: MemoryLabRun[] = [];
  try {
    for (const target of cpuTargets) {
      progress.step(`cpu: ${target.title}`, cpuPlan);
      const run = await measureCpuLab(probe.setup, target, settings.cpu, (what) => progress.update(what));
      cpu.push(run);
      const half = run.cases.find((c) => c.cores === 0.5 && c.periodUs === DEFAULT_PERIOD_US);
      const free = run.cases[0]!;
      if (half) progress.note(`${target.title}: p99 ${ms(free.load.latencyUs.p99)} ms with no limit, ${ms(half.load.latencyUs.p99)} ms at 0.5 core (${half.throttle.throttled} of ${half.throttle.periods} periods throttled)`);
    }
    for (const target of memoryTargets) {
      progress.step(`memory: ${target.title} under ${settings.memory.capBytes / 2 ** 20} MiB`, memoryPlan);
      const run = await measureMemoryLab(probe.setup, target, settings.memory, (what) => progress.update(what));
      memory.push(run);
      progress.note(`${target.title}: held ${run.held} clients; ended by ${run.outcome.kind}${'detail' in run.outcome ? ` (${run.outcome.detail})` : ''}${run.lostClients.length ? `; ${run.lostClients.length} clients lost their connection` : ''}`);
    }
  } finally {
    await stopAllLabs();
    const left = removeAllGroups();
    if (left.length) console.error(`[limits] could not remove ${left.join(', ')}`);
  }
  progress.done();
  const report = buildReport(settings, stamp, probe.setup.line, probe.setup.version, cpu, memory);
  writeReportFile(settings.output, report);
  const written = await writeLimitsReport(report, settings.markdown);
  console.error(`[limits] wrote ${[settings.output, settings.markdown, ...written].map(relative).join(', ')}`);
}

function buildReport(settings: Settings, stamp: LimitsReport['stamp'], probe: string, version: LimitsReport['cgroup']['version'], cpu: CpuLabRun[], memory: MemoryLabRun[]): LimitsReport {
  return {
    experiment: 'limits',
    schema: LIMITS_SCHEMA,
    stamp,
    labs: describeLabs([...new Set([...cpu.map((r) => r.lab), ...memory.map((r) => r.lab)])]),
    cgroup: { version, probe },
    config: { cpu: settings.cpu, memory: settings.memory },
    cpu,
    memory,
  };
}

const ms = (us: number) => (us / 1000).toFixed(1);

main().catch(exitOnUserError('limits'));
