/**
 * The CPU half of the limits experiment: one lab (in one variant) under CFS bandwidth control.
 *
 *   1. Make a group, start the lab inside it (http, --quiet, the experiment's --work-us, its cores
 *      flag set to the machine's cores), with no limit yet.
 *   2. For each case, in order: set the group's quota (none, or `cores` × period per period),
 *      then offer the same paced load from outside the group (bench/load/paced.ts: the same
 *      Poisson schedule every time) and read cpu.stat every bucket, so each moment's latency can be
 *      set beside the periods in which the group had spent its quota and was stopped.
 *   3. Stop the lab and remove the group (the caller's `removeAllGroups` also does, on failure).
 *
 * Why several threads spend a quota faster: the quota is CPU time per period for the whole group,
 * whatever runs it. One thread can spend at most one period's worth of time in a period; two
 * threads busy at once spend it twice as fast, and then all of them wait for the next period.
 */

import { startLabThrough } from '../../harness/launch.js';
import { runPacedLoad, type PacedBucket, type PacedResult } from '../load/paced.js';
import { treeUsage } from '../../harness/processes.js';
import { joinGroup, makeGroup, removeGroup, type CgroupSetup, type CpuStat } from './cgroup.js';

/** One limit: a quota of `cores` per `periodUs`, or none (`cores` null). */
export interface CpuCase {
  readonly cores: number | null;
  readonly periodUs: number;
}

export interface CpuConfig {
  readonly cases: readonly CpuCase[];
  readonly seconds: number;
  readonly ratePerSec: number;
  readonly workUs: number;
  readonly connections: number;
  readonly bucketMs: number;
  /** The machine's cores, passed to labs with a cores flag (threads, workers). */
  readonly cores: number;
}

/** cpu.stat's counters over one bucket of the run. */
export interface ThrottleBucket {
  readonly tMs: number;
  readonly throttled: number;
  readonly throttledMs: number;
}

export interface CpuCaseResult extends CpuCase {
  readonly load: Omit<PacedResult, 'buckets'>;
  readonly buckets: readonly PacedBucket[];
  /** cpu.stat over the scheduled window. */
  readonly throttle: CpuStat;
  readonly throttleOverTime: readonly ThrottleBucket[];
  /** CPU the lab's process tree used over the window, ms. */
  readonly serverCpuMs: number;
  /** This process's CPU (the load generator's) over the window, ms. */
  readonly loadGenCpuMs: number;
  /** Most threads in the lab's tree during the case, summed over its processes. */
  readonly threads: number;
  readonly processes: number;
}

export interface CpuLabRun {
  readonly lab: string;
  readonly variant: string;
  /** "04-evented" or "06-loop-per-core (shared)". */
  readonly title: string;
  readonly args: readonly string[];
  readonly connections: number;
  readonly cases: readonly CpuCaseResult[];
}

const delta = (a: CpuStat, b: CpuStat): CpuStat => ({ periods: b.periods - a.periods, throttled: b.throttled - a.throttled, throttledMs: b.throttledMs - a.throttledMs });

export async function measureCpuLab(
  setup: CgroupSetup,
  target: { lab: string; variant: string; title: string; args: readonly string[]; connections: number },
  config: CpuConfig,
  onCase: (what: string) => void,
): Promise<CpuLabRun> {
  // Step 1.
  const group = makeGroup(setup);
  const join = joinGroup(group);
  const args = ['--quiet', '--protocol', 'http', '--work-us', String(config.workUs), ...target.args];
  const lab = await startLabThrough(join.prefix, target.lab, args, join.env).catch((error: unknown) => {
    removeGroup(group);
    throw error;
  });
  const cases: CpuCaseResult[] = [];
  try {
    if (!group.pids().includes(lab.pid)) throw new Error(`${target.title}: pid ${lab.pid} is not in ${group.dirs.join(', ')}`);
    // Step 2.
    for (const limit of config.cases) {
      onCase(caseName(limit));
      group.setCpu(limit.cores === null ? undefined : { cores: limit.cores, periodUs: limit.periodUs });
      const stats: { tMs: number; stat: CpuStat }[] = [];
      let before = group.cpuStat();
      let treeBefore = treeUsage(lab.pid, {});
      let ownBefore = process.cpuUsage();
      let threads = 0;
      let processes = 0;
      const load = await runPacedLoad({
        host: lab.host,
        port: lab.port,
        connections: target.connections,
        ratePerSec: config.ratePerSec,
        durationMs: config.seconds * 1000,
        bucketMs: config.bucketMs,
        onTick: (tMs) => {
          const stat = group.cpuStat();
          if (tMs === 0) {
            // The window starts here: counters from the warm-up are not the case's.
            before = stat;
            treeBefore = treeUsage(lab.pid, {});
            ownBefore = process.cpuUsage();
          }
          stats.push({ tMs, stat });
          if (tMs % 1000 === 0) {
            const tree = treeUsage(lab.pid, {});
            threads = Math.max(threads, tree.threads);
            processes = Math.max(processes, tree.processes);
          }
        },
      });
      const after = group.cpuStat();
      const own = process.cpuUsage(ownBefore);
      const tree = treeUsage(lab.pid, {});
      stats.push({ tMs: config.seconds * 1000, stat: after });
      const { buckets, ...summary } = load;
      cases.push({
        ...limit,
        load: summary,
        buckets,
        throttle: delta(before, after),
        throttleOverTime: stats.slice(0, -1).map((s, i) => ({ tMs: s.tMs, ...pick(delta(s.stat, stats[i + 1]!.stat)) })),
        serverCpuMs: Math.max(0, tree.cpuMs - treeBefore.cpuMs),
        loadGenCpuMs: (own.user + own.system) / 1000,
        threads: Math.max(threads, tree.threads),
        processes: Math.max(processes, tree.processes),
      });
    }
  } finally {
    // Step 3.
    await lab.stop('SIGTERM', 10_000);
    removeGroup(group);
  }
  return { ...target, cases };
}

const pick = (stat: CpuStat) => ({ throttled: stat.throttled, throttledMs: Math.round(stat.throttledMs * 10) / 10 });

/** "no limit", "0.5 core / 100 ms". */
export function caseName(limit: CpuCase): string {
  return limit.cores === null ? 'no limit' : `${limit.cores} core / ${limit.periodUs / 1000} ms`;
}
