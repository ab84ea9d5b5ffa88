/**
 * A process and its tree as the kernel shows them in /proc (Linux only): the tree itself, its CPU
 * time, memory (RSS and PSS), descriptors, threads and context switches. Tests, the benchmark and
 * every experiment observe a server's processes through this one module, and every question about
 * "the tree" is answered by the same walk (`processTree`).
 */

import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat times; 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

export interface Stat {
  readonly ppid: number;
  /** One letter: R running, S sleeping, Z zombie, ... */
  readonly state: string;
  /** user + system CPU of the process itself, in ms. */
  readonly cpuMs: number;
  /** user + system CPU of its children that have exited and been reaped (cutime + cstime), in ms. */
  readonly reapedChildrenCpuMs: number;
  readonly rssBytes: number;
  readonly threads: number;
}

export function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const num = (index: number) => Number(fields[index - 3]);
  return {
    state: fields[0] ?? '?',
    ppid: num(4),
    cpuMs: ((num(14) + num(15)) * 1000) / CLOCK_TICKS,
    reapedChildrenCpuMs: ((num(16) + num(17)) * 1000) / CLOCK_TICKS,
    threads: num(20),
    rssBytes: num(24) * PAGE_SIZE,
  };
}

/** Every process's parent, from one pass over /proc: the tree functions' fallback. */
function childrenByParent(): Map<number, number[]> {
  const childrenOf = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = stat(Number(entry));
    if (!info) continue;
    const siblings = childrenOf.get(info.ppid);
    if (siblings) siblings.push(Number(entry));
    else childrenOf.set(info.ppid, [Number(entry)]);
  }
  return childrenOf;
}

/**
 * The children of `pid` from the kernel's own list, /proc/PID/task/TID/children (one file per
 * thread: a child is listed under the thread that made it), zombies included; undefined where the
 * kernel has no such file (built without CONFIG_PROC_CHILDREN) and the whole of /proc must be read.
 * An exited `pid` has none.
 */
function listedChildren(pid: number): number[] | undefined {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of threads) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && existsSync(`/proc/${pid}/task/${tid}`)) return undefined;
      continue; // the thread ended meanwhile
    }
    for (const child of text.split(' ')) if (child.trim() !== '') children.push(Number(child));
  }
  return children;
}

/** Direct children of `pid`, zombies included (state Z). */
export function childPids(pid: number): number[] {
  return listedChildren(pid) ?? childrenByParent().get(pid) ?? [];
}

/**
 * `pid` and all its descendants, parents before children: from each process's list of children,
 * or where the kernel keeps none, from one pass over /proc (a scan per process would be slow for a
 * lab holding a hundred children, sampled several times a second).
 */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    const children = listedChildren(all[i]!);
    if (children === undefined) return treeFromScan(pid);
    all.push(...children);
  }
  return all;
}

function treeFromScan(pid: number): number[] {
  const childrenOf = childrenByParent();
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(childrenOf.get(all[i]!) ?? []));
  return all;
}

export interface TreeUsage {
  readonly processes: number;
  /** CPU of the live tree plus the children the root has reaped, in ms. */
  readonly cpuMs: number;
  readonly rssBytes: number;
  /**
   * Proportional set size summed over the tree: each page shared by several processes (Node's
   * code, in every child of a forking server) divided among them, so this is what the tree really
   * costs, where RSS counts a shared page once per process. Undefined unless asked for, or where
   * /proc/PID/smaps_rollup is missing (kernels before 4.14) or unreadable.
   */
  readonly pssBytes: number | undefined;
  /** Open descriptors summed over the tree; 0 unless asked for. */
  readonly fds: number;
  readonly threads: number;
  /** Context switches summed over the tree; 0 unless asked for. */
  readonly voluntarySwitches: number;
  readonly involuntarySwitches: number;
}

export interface UsageOptions {
  /** Lists every process's fd directory: samplers that run several times a second leave it off. */
  readonly fds?: boolean;
  /** Reads smaps_rollup, which makes the kernel walk every mapping: for weighing, not sampling. */
  readonly pss?: boolean;
  /** Reads /proc/PID/status for the context-switch counters. */
  readonly switches?: boolean;
}

/**
 * Sums CPU, memory, threads (and on request descriptors, PSS and context switches) over a live
 * process tree. The root's CPU includes its children that already exited and were reaped (the
 * kernel folds theirs into its cutime).
 */
export function treeUsage(pid: number, options: UsageOptions = { fds: true }): TreeUsage {
  let cpuMs = 0;
  let rssBytes = 0;
  let pssBytes: number | undefined = options.pss ? 0 : undefined;
  let fds = 0;
  let threads = 0;
  let voluntarySwitches = 0;
  let involuntarySwitches = 0;
  const pids = processTree(pid);
  for (const p of pids) {
    const info = stat(p);
    if (!info) continue;
    cpuMs += info.cpuMs + (p === pid ? info.reapedChildrenCpuMs : 0);
    rssBytes += info.rssBytes;
    threads += info.threads;
    if (options.fds) fds += openFds(p);
    if (options.pss) {
      const pss = pssOf(p);
      pssBytes = pss === undefined || pssBytes === undefined ? undefined : pssBytes + pss;
    }
    if (options.switches) {
      const switches = contextSwitches(p);
      voluntarySwitches += switches.voluntary;
      involuntarySwitches += switches.involuntary;
    }
  }
  return { processes: pids.length, cpuMs, rssBytes, pssBytes, fds, threads, voluntarySwitches, involuntarySwitches };
}

/** A tree weighed for a memory figure: RSS, PSS and descriptors. */
export function treeMemory(pid: number): TreeUsage {
  return treeUsage(pid, { fds: true, pss: true });
}

function pssOf(pid: number): number | undefined {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Context switches of every thread of one process. Voluntary: a thread gave up the CPU to wait
 * (for I/O, a lock, a sleep). Involuntary: the scheduler took the CPU away (its time slice ran
 * out, another task preempted it). /proc/PID/status counts the main thread alone, so this sums
 * /proc/PID/task/TID/status over the threads (worker threads, libuv's pool, V8's helpers).
 */
export function contextSwitches(pid: number): { voluntary: number; involuntary: number } {
  let voluntary = 0;
  let involuntary = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return { voluntary, involuntary };
  }
  for (const tid of tids) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      voluntary += field('voluntary_ctxt_switches');
      involuntary += field('nonvoluntary_ctxt_switches');
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { voluntary, involuntary };
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** What each of `pid`'s descriptors points at, e.g. "socket:[1234]"; for leak diagnostics. */
export function fdTargets(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '?';
      }
    });
  } catch {
    return [];
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
