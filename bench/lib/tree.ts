/**
 * The benchmark's view of a server's process tree, built on procfs.ts: cheap enough to sample
 * several times a second, with PSS beside RSS for trees whose processes share pages.
 */

import { readFileSync } from 'node:fs';
import { openFds, processTree, stat } from './procfs.js';

/**
 * Memory of a live tree two ways. RSS counts a page shared by several processes (Node's code, in
 * every child of a forking server) once per process; PSS divides each shared page among the
 * processes sharing it, so PSS summed over a tree is the memory the tree really costs. PSS is
 * undefined where /proc/PID/smaps_rollup is missing (kernels before 4.14) or unreadable.
 */
export function treeMemory(pid: number): { processes: number; rssBytes: number; pssBytes: number | undefined; fds: number } {
  let rssBytes = 0;
  let pssBytes: number | undefined = 0;
  let fds = 0;
  const pids = processTree(pid);
  for (const p of pids) {
    rssBytes += stat(p)?.rssBytes ?? 0;
    fds += openFds(p);
    const pss = pssOf(p);
    pssBytes = pss === undefined || pssBytes === undefined ? undefined : pssBytes + pss;
  }
  return { processes: pids.length, rssBytes, pssBytes, fds };
}

function pssOf(pid: number): number | undefined {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The soft limit on open files of `pid` ("self" for this process), or undefined if unlimited/unknown. */
export function openFileLimit(pid: number | 'self'): number | undefined {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** MemAvailable from /proc/meminfo: what the kernel estimates can be used without swapping. */
export function memAvailableBytes(): number | undefined {
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
