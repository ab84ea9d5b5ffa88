/**
 * What the robust suite observes of a running server from outside, through /proc: its live and
 * zombie children, its threads, its memory and CPU over time, and the kernel queues of one
 * connection. Built on `bench/observe/`, which tests and benchmarks share.
 */

import { childPids, stat, treeUsage } from '../../../bench/observe/processes.js';

export function liveChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state !== 'Z');
}

export function zombieChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state === 'Z');
}

export function threadCount(pid: number): number {
  return stat(pid)?.threads ?? 0;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const info = stat(pid);
  return info !== undefined && info.state !== 'Z';
}

/**
 * Samples the resident memory of a process tree (server plus children) every `intervalMs` until
 * stopped, and keeps the peak. RSS is what the kernel has to find room for, shared pages included:
 * the conservative measure for "stays under its baseline + N MiB".
 */
export class MemorySampler {
  #peak = 0;
  #samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pid: number, intervalMs = 100) {
    this.#take();
    this.#timer = setInterval(() => this.#take(), intervalMs);
  }

  get peakBytes(): number {
    return this.#peak;
  }
  get samples(): number {
    return this.#samples;
  }

  stop(): number {
    clearInterval(this.#timer);
    this.#take();
    return this.#peak;
  }

  #take(): void {
    const rss = treeUsage(this.pid).rssBytes;
    this.#samples++;
    if (rss > this.#peak) this.#peak = rss;
  }
}

/** CPU time (user + system, ms) of the process itself, all its threads, no children. */
export function processCpuMs(pid: number): number {
  return stat(pid)?.cpuMs ?? 0;
}
