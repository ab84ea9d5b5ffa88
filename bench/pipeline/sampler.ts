/**
 * What one measured window cost: the server's whole process tree (CPU time, peak memory) and the
 * load generator's own CPU, which is this process.
 *
 * CPU comes from /proc at the window's two ends, so it is exact to the kernel's 10 ms tick and
 * includes children that exited during the window once their parent has reaped them. Memory is
 * sampled every `intervalMs` (a tree's peak between two samples can be missed; the report says so).
 * For a server started elsewhere (`--target`) every server figure is null: unavailable.
 */

import { treeUsage } from '../observe/processes.js';

export interface WindowUsage {
  readonly wallMs: number;
  /** user+system CPU of the server tree during the window, ms; null when unavailable. */
  readonly serverCpuMs: number | null;
  readonly peakRssBytes: number | null;
  /** Most processes the tree had at a sample. */
  readonly peakProcesses: number | null;
  readonly loadGenCpuMs: number;
  /** Load generator CPU as a share of one core: 100 means it kept one core busy the whole time. */
  readonly loadGenCorePct: number;
}

export class WindowSampler {
  readonly #pid: number | undefined;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #startWall = 0;
  #startCpu = 0;
  #startOwn: NodeJS.CpuUsage = { user: 0, system: 0 };
  #peakRss = 0;
  #peakProcesses = 0;

  constructor(pid: number | undefined, intervalMs = 200) {
    this.#pid = pid;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#startWall = performance.now();
    this.#startOwn = process.cpuUsage();
    if (this.#pid === undefined) return;
    const first = this.#sample();
    this.#startCpu = first.cpuMs;
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): WindowUsage {
    const own = process.cpuUsage(this.#startOwn);
    const wallMs = performance.now() - this.#startWall;
    const loadGenCpuMs = (own.user + own.system) / 1000;
    const loadGen = { wallMs, loadGenCpuMs, loadGenCorePct: wallMs > 0 ? (100 * loadGenCpuMs) / wallMs : 0 };
    if (this.#pid === undefined) return { ...loadGen, serverCpuMs: null, peakRssBytes: null, peakProcesses: null };
    clearInterval(this.#timer);
    const last = this.#sample();
    return {
      ...loadGen,
      serverCpuMs: Math.max(0, last.cpuMs - this.#startCpu),
      peakRssBytes: this.#peakRss,
      peakProcesses: this.#peakProcesses,
    };
  }

  #sample(): { cpuMs: number } {
    const usage = treeUsage(this.#pid!, {});
    this.#peakRss = Math.max(this.#peakRss, usage.rssBytes);
    this.#peakProcesses = Math.max(this.#peakProcesses, usage.processes);
    return usage;
  }
}
