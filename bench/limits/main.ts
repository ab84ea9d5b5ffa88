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
import { LABS, labVariants } from '../../labs/index.js';
import { UserError } from '../../shared/errors.js';
import { defineExperiment, runMain, type Body, type Run } from '../kit/experiment.js';
import { describeLabs } from '../kit/labs.js';
import type { Settings } from '../kit/command-line.js';
import { probeCgroups, removeAllGroups, removeGroupsOnExit, removeStaleGroups } from './cgroup.js';
import { measureCpuLab, type CpuCase, type CpuLabRun } from './cpu.js';
import { measureMemoryLab, type MemoryLabRun } from './memory.js';
import { LIMITS_SCHEMA, renderLimits, type LimitsReport } from './render.js';

const LAB_IDS = LABS.map((lab) => lab.id);

/** The kernel's default CFS period, and a shorter one (a tenth) that cuts the longest stall. */
const DEFAULT_PERIOD_US = 100_000;
const SHORT_PERIOD_US = 10_000;

const OPTIONS = {
  labs: { type: 'list', default: LAB_IDS, choices: LAB_IDS, describe: 'labs to run' },
  parts: { type: 'list', default: ['cpu', 'memory'], choices: ['cpu', 'memory'], describe: 'which halves to run' },
  'all-variants': { type: 'boolean', describe: 'every registry variant in the CPU cases [default: true; quick: false]' },
  seconds: { type: 'number', default: 5, quick: 2, min: 0, above: true, describe: 'seconds of load per CPU case' },
  rate: { type: 'number', default: 250, min: 0, above: true, describe: 'requests per second offered (Poisson arrivals, the same schedule in every case)' },
  'work-us': { type: 'number', default: 1000, min: 0, integer: true, describe: 'CPU work per request in the server (its --work-us)' },
  connections: { type: 'number', default: 4, min: 1, max: 100, integer: true, describe: 'keep-alive connections the paced load uses (1 for a serial lab)' },
  quotas: { type: 'list', default: ['1', '0.5', '0.25'], describe: 'CPU quotas, in cores, each at both periods' },
  periods: { type: 'numbers', default: [DEFAULT_PERIOD_US / 1000, SHORT_PERIOD_US / 1000], min: 1, max: 1000, describe: 'CFS periods, in ms' },
  'cap-mib': { type: 'number', default: 256, min: 32, describe: "memory cap of each lab's group, MiB" },
  ceiling: { type: 'number', default: 1000, quick: 200, min: 1, integer: true, describe: 'most clients per lab in the memory half' },
} as const;

async function measure(settings: Settings<typeof OPTIONS>, run: Run): Promise<Body<LimitsReport>> {
  const quotas = settings.quotas.map(Number);
  const bad = quotas.find((q) => !(q > 0));
  if (bad !== undefined) throw new UserError(`--quotas must be positive numbers, got ${bad}`);
  const cases: CpuCase[] = [{ cores: null, periodUs: DEFAULT_PERIOD_US }, ...settings.periods.flatMap((ms) => quotas.map((cores) => ({ cores, periodUs: ms * 1000 })))];
  const cpuConfig = { cases, seconds: settings.seconds, ratePerSec: settings.rate, workUs: settings['work-us'], connections: settings.connections, bucketMs: 100, cores: os.availableParallelism() };
  const memoryConfig = { capBytes: settings['cap-mib'] * 2 ** 20, ceiling: settings.ceiling, maxSeconds: settings.quick ? 20 : 60, probeTimeoutMs: 10_000 };
  const allVariants = settings['all-variants'] ?? !settings.quick;

  const probe = probeCgroups();
  if (!probe.setup) throw new UserError(`${probe.problem}; see bench/README.md (make limits) for how to run it`);
  console.error(`[limits] ${probe.setup.line}`);
  removeGroupsOnExit((signal) => console.error(`[limits] ${signal}: stopping; removing the cgroups made (${removeAllGroups().length ? 'some would not go' : 'all removed'})`));
  for (const stale of removeStaleGroups(probe.setup)) console.error(`[limits] removed ${stale}, left by an earlier run that was killed`);

  const cpuTargets = settings.parts.includes('cpu')
    ? labVariants((lab) => settings.labs.includes(lab.id))
        .filter(({ lab, variant }) => allVariants || variant === lab.variants[0])
        .map(({ lab, variant, title }) => ({
          lab: lab.id,
          variant: variant.name,
          title,
          args: [...variant.args, ...(lab.coresFlag ? [lab.coresFlag, String(cpuConfig.cores)] : [])],
          connections: lab.traits.kernelQueueOnly ? 1 : cpuConfig.connections,
        }))
    : [];
  const memoryTargets = settings.parts.includes('memory') ? LABS.filter((lab) => settings.labs.includes(lab.id)).map((lab) => ({ lab: lab.id, title: lab.id, args: [...lab.variants[0]!.args] })) : [];
  // Each CPU case: its load, plus about a second to connect, warm up and drain; a lab ~2 s to start.
  const cpuPlan = 2 + cases.length * (cpuConfig.seconds + 1);
  const memoryPlan = memoryConfig.maxSeconds / 3;
  const progress = run.progress(cpuTargets.length * cpuPlan + memoryTargets.length * memoryPlan);

  const cpu: CpuLabRun[] = [];
  const memory: MemoryLabRun[] = [];
  try {
    for (const target of cpuTargets) {
      progress.step(`cpu: ${target.title}`, cpuPlan);
      const measured = await measureCpuLab(probe.setup, target, cpuConfig, (what) => progress.update(what));
      cpu.push(measured);
      const half = measured.cases.find((c) => c.cores === 0.5 && c.periodUs === DEFAULT_PERIOD_US);
      const free = measured.cases[0]!;
      if (half) progress.note(`${target.title}: p99 ${ms(free.load.latencyUs.p99)} ms with no limit, ${ms(half.load.latencyUs.p99)} ms at 0.5 core (${half.throttle.throttled} of ${half.throttle.periods} periods throttled)`);
    }
    for (const target of memoryTargets) {
      progress.step(`memory: ${target.title} under ${settings['cap-mib']} MiB`, memoryPlan);
      const held = await measureMemoryLab(probe.setup, target, memoryConfig, (what) => progress.update(what));
      memory.push(held);
      progress.note(`${target.title}: held ${held.held} clients; ended by ${held.outcome.kind}${'detail' in held.outcome ? ` (${held.outcome.detail})` : ''}${held.lostClients.length ? `; ${held.lostClients.length} clients lost their connection` : ''}`);
    }
  } finally {
    const left = removeAllGroups();
    if (left.length) console.error(`[limits] could not remove ${left.join(', ')}`);
  }
  progress.done();
  return {
    labs: describeLabs([...new Set([...cpu.map((r) => r.lab), ...memory.map((r) => r.lab)])]),
    cgroup: { version: probe.setup.version, probe: probe.setup.line },
    config: { cpu: cpuConfig, memory: memoryConfig },
    cpu,
    memory,
  };
}

const ms = (us: number) => (us / 1000).toFixed(1);

export const limits = defineExperiment({
  name: 'limits',
  title: 'Limits: each model under cgroup CPU quotas and a memory cap',
  about: 'Runs every lab (or --labs) in a cgroup under CPU quotas and a memory cap; writes results/limits.{json,md} and results/limits-*.svg.',
  schema: LIMITS_SCHEMA,
  options: OPTIONS,
  render: renderLimits,
  measure,
});

runMain(limits, import.meta.url);
