/**
 * The soak's view of a server over time, from /proc once per interval (the shared tree sampler): memory and descriptors of
 * the server process and of its whole tree, and how much load got through since the last sample.
 */

import { openFds } from '../../harness/processes.js';
import { TreeSampler } from '../kit/tree-sampler.js';

export interface SoakSample {
  /** Since the load started, in ms. */
  readonly tMs: number;
  /** Resident memory of the server and all its children. */
  readonly rssBytes: number;
  /** Processes in the tree: 1, plus the children of a lab with traits.children. */
  readonly processes: number;
  /** Open descriptors of the server process itself: a leak shows here. */
  readonly serverFds: number;
  /** Open descriptors summed over the tree (a forking lab: one socket and a few pipes per child). */
  readonly treeFds: number;
  /** Threads summed over the tree. */
  readonly threads: number;
  /** CPU time of the tree so far (reaped children included), in ms. */
  readonly cpuMs: number;
  /** Load-generator responses and churn cycles completed so far (cumulative). */
  readonly responses: number;
  readonly churnCycles: number;
}

export interface LoadCounters {
  responses(): number;
  churnCycles(): number;
}

/** Samples `pid` every `intervalMs` from now until `stop()`, on the shared tree sampler. */
export function soakSampler(pid: number, intervalMs: number, counters: LoadCounters): TreeSampler<SoakSample> {
  const sampler = new TreeSampler(pid, intervalMs, { fds: true }, (tree, tMs): SoakSample => ({
    tMs,
    rssBytes: tree.rssBytes,
    processes: tree.processes,
    serverFds: openFds(pid),
    treeFds: tree.fds,
    threads: tree.threads,
    cpuMs: tree.cpuMs,
    responses: counters.responses(),
    churnCycles: counters.churnCycles(),
  }));
  sampler.start();
  return sampler;
}
