/**
 * What the robust suite observes of a running server from outside, through /proc: its live and
 * zombie children, its threads, its memory and CPU over time, and the kernel queues of one
 * connection. Built on `harness/`, which tests and benchmarks share.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { childPids, stat, treeUsage } from '../../../harness/processes.js';

export function liveChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state !== 'Z');
}

export function zombieChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state === 'Z');
}

/**
 * The process's threads, without the kernel's io_uring workers (`iou-wrk-PID`, lab 07): the kernel
 * starts one when it must finish an operation it could not complete by polling, and keeps the last
 * one idle for the next (io-wq); it is the kernel's pool, not a thread the server started or leaked.
 */
export function threadCount(pid: number): number {
  const threads = stat(pid)?.threads ?? 0;
  let workers = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith('iou-wrk-')) workers++;
    }
  } catch {
    // the process or one thread has just gone: count what stat() said
  }
  return threads - workers;
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
