/**
 * Counting a running server's system calls and context switches while a workload runs.
 *
 * System calls: `strace -f -c` attached to every process of the server's tree (with -f, strace
 * attaches every thread of each and follows the threads and children created later), detached
 * with SIGINT once the workload is done, when it writes its per-call summary. strace stops the
 * traced thread at every call, so the server runs many times slower under it: its counts are
 * right, its timings are not, and nothing here reports them.
 *
 * Context switches: the kernel's per-thread counters in /proc/PID/task/TID/status, summed over
 * every thread of every process in the tree, read before and after a separate run without
 * strace. A process that exits during the run takes its counts with it (the kernel folds them into
 * its parent's rusage, which /proc does not show), so per-connection children count only while
 * they live.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processTree, treeUsage } from '../../harness/processes.js';

/** Calls of one system call, and how many of them failed (EAGAIN counts as a failure). */
export interface CallCount {
  readonly calls: number;
  readonly errors: number;
}

/** Parses the table `strace -c` writes: "% time  seconds  usecs/call  calls  errors syscall". */
export function parseStraceSummary(text: string): Record<string, CallCount> {
  const counts: Record<string, CallCount> = {};
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // A data row has 5 fields (no errors) or 6; the header, the rules and "total" do not count.
    if (fields.length < 5 || !/^\d/.test(fields[0]!)) continue;
    const name = fields[fields.length - 1]!;
    if (name === 'total') continue;
    const calls = Number(fields[3]);
    const errors = fields.length >= 6 ? Number(fields[4]) : 0;
    if (!Number.isFinite(calls)) continue;
    counts[name] = { calls, errors: Number.isFinite(errors) ? errors : 0 };
  }
  return counts;
}

/** Whether strace can attach here (it needs ptrace: root, or a permissive yama scope). */
export function straceUnavailable(): string | undefined {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'strace is not installed (apt-get install strace)';
  }
  return undefined;
}

/**
 * Runs `workload` with strace attached to the tree of `pid`; resolves with the counts. The
 * workload starts only once strace reports every process attached, and strace is detached only
 * after the workload resolves.
 */
export async function countSystemCalls(pid: number, workload: () => Promise<void>): Promise<Record<string, CallCount>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-strace-'));
  const output = path.join(dir, 'summary.txt');
  const pids = processTree(pid);
  const strace = spawn('strace', ['-f', '-c', '-S', 'calls', '-o', output, ...pids.flatMap((p) => ['-p', String(p)])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => strace.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`strace did not attach within 20 s: ${stderr.trim()}`)), 20_000);
      strace.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const attached = stderr.match(/Process \d+ attached/g)?.length ?? 0;
        if (attached >= pids.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`strace exited (${code}) before attaching: ${stderr.trim()}`));
      });
    });
    await workload();
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
  try {
    return parseStraceSummary(readFileSync(output, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ContextSwitches {
  /** A thread gave up the CPU itself: it waited (a read with nothing to read, a futex, epoll_wait). */
  readonly voluntary: number;
  /** The scheduler took the CPU away: its time slice ran out, or a more urgent thread woke. */
  readonly involuntary: number;
}

/** The context switches of every thread of every process in the tree of `pid`, now. */
function treeSwitches(pid: number): ContextSwitches {
  const usage = treeUsage(pid, { switches: true });
  return { voluntary: usage.voluntarySwitches, involuntary: usage.involuntarySwitches };
}

/** The context switches of the tree of `pid` during `workload`. */
export async function countContextSwitches(pid: number, workload: () => Promise<void>): Promise<ContextSwitches> {
  const before = treeSwitches(pid);
  await workload();
  const after = treeSwitches(pid);
  return { voluntary: after.voluntary - before.voluntary, involuntary: after.involuntary - before.involuntary };
}
