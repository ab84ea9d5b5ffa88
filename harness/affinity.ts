/**
 * CPU pinning with taskset(1), so the load generator and the server under test never compete for
 * one core: on a 2-core machine the harness (and so the load generator) takes core 0 and the
 * server's whole process tree takes the rest.
 *
 * A process's threads each have their own affinity, and new threads and child processes inherit
 * their creator's, so pinning every thread of every process in a tree right after it starts also
 * covers the children a forking server creates later.
 */

import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { processTree } from './processes.js';

export interface CpuPlan {
  /** Cores the load generator (this process) runs on, e.g. "0". */
  readonly loadGenerator: string;
  /** Cores the server tree runs on, e.g. "1" or "1-3". */
  readonly server: string;
  /** Every core, for scenarios that let the server use the whole machine, e.g. "0-1". */
  readonly all: string;
}

/**
 * The split for this machine, or undefined when pinning is impossible (1 core, no taskset).
 * Call it before pinning anything: the core count it reads is this process's own affinity.
 */
export function planCpus(cores = os.availableParallelism()): CpuPlan | undefined {
  if (cores < 2 || !hasTaskset()) return undefined;
  return { loadGenerator: '0', server: cores === 2 ? '1' : `1-${cores - 1}`, all: `0-${cores - 1}` };
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of `pid` and of all its descendants to `cpus` (a taskset list such as "1-3"). */
export function pinTree(pid: number, cpus: string): void {
  for (const p of processTree(pid)) {
    try {
      execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(p)], { stdio: 'ignore' });
    } catch {
      // the process exited between the scan and taskset: nothing left to pin
    }
  }
}
