/**
 * The soak's view of a server over time, from /proc once per interval: memory and descriptors of
 * the server process and of its whole tree, and how much load got through since the last sample.
 */

import { openFds, treeUsage } from '../observe/processes.js';

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

/** Samples `pid` every `intervalMs` until stopped. */
export class Sampler {
  readonly samples: SoakSample[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #startedAt = performance.now();

  constructor(
    readonly pid: number,
    intervalMs: number,
    readonly counters: LoadCounters,
  ) {
    this.take();
    this.#timer = setInterval(() => this.take(), intervalMs);
  }

  take(): SoakSample {
    const tree = treeUsage(this.pid);
    const sample: SoakSample = {
      tMs: Math.round(performance.now() - this.#startedAt),
      rssBytes: tree.rssBytes,
      processes: tree.processes,
      serverFds: openFds(this.pid),
      treeFds: tree.fds,
      threads: tree.threads,
      cpuMs: tree.cpuMs,
      responses: this.counters.responses(),
      churnCycles: this.counters.churnCycles(),
    };
    this.samples.push(sample);
    return sample;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.take();
  }
}
