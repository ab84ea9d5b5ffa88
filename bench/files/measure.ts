/**
 * Measures the files experiment: for each target (a lab, and for labs 01, 05 and 07 each `--copy`),
 * each file size and each connection count, one wrk run against a fresh page-cache-warm file,
 * with the server tree's CPU from /proc around it; then, per target and size, one run under
 * strace -f -c for the system calls per request.
 */

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labVariants, type LabInfo } from '../../labs/index.js';
import { startLab, type LabProcess } from '../../harness/launch.js';
import { treeUsage } from '../../harness/processes.js';
import type { Progress } from '../kit/progress.js';
import { countSystemCalls, type CallCount } from '../syscalls/trace.js';
import { runWrk, type WrkRun } from './wrk.js';
import { fileReply, type FileJob } from '../../shared/files.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** One server configuration measured: a lab in its first variant, with one way to copy files. */
export interface FileTarget {
  readonly id: string;
  readonly label: string;
  readonly labId: string;
  /** How the bytes reach the socket, for the report's explanation (`--copy`'s value, or Node streams). */
  readonly copy: 'sendfile' | 'read-write' | 'read-send' | 'splice' | 'node';
  readonly args: readonly string[];
  readonly serial: boolean;
  /** Serves each connection in a new process (lab 02): every wrk run starts its children first. */
  readonly children: boolean;
}

/** Every lab that lists `files`, in its first variant; a lab with `--copy` once per copy. */
export function fileTargets(labs: (lab: LabInfo) => boolean = () => true): FileTarget[] {
  return labVariants((lab) => lab.protocols.includes('files') && labs(lab))
    .filter(({ lab, variant }) => variant === lab.variants[0])
    .flatMap(({ lab, variant }): FileTarget[] => {
      const base = { labId: lab.id, serial: lab.traits.kernelQueueOnly, children: lab.traits.children };
      const copies = lab.fileCopies;
      if (!copies) return [{ ...base, id: lab.id, label: lab.label, copy: 'node' as const, args: [...variant.args] }];
      return copies.map((copy) => ({
        ...base,
        id: `${lab.id} (${copy.name})`,
        label: `${lab.label} ${copy.name}`,
        copy: copy.name as FileTarget['copy'],
        args: [...variant.args, ...copy.args],
      }));
    });
}

export interface Plan {
  readonly sizes: readonly number[];
  readonly connections: readonly number[];
  /** Seconds of the measured wrk run; a run of `warmupSeconds` comes first (0: none). */
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Seconds of the traced run (strace slows the server, so few requests are needed). */
  readonly tracedSeconds: number;
}

export interface LoadCell {
  readonly size: number;
  readonly connections: number;
  readonly wrk: WrkRun;
  /** The server tree's user + system CPU during the measured run, ms. */
  readonly serverCpuMs: number;
}

export interface TracedCell {
  readonly size: number;
  /** Responses wrk completed under strace. */
  readonly requests: number;
  /**
   * Responses' worth of bytes wrk received (bytes ÷ one response's head and body): the unit the
   * calls are divided by, since the response still in flight when the run ends made calls too.
   */
  readonly responses: number;
  readonly calls: Record<string, CallCount>;
}

export interface TargetResult {
  readonly target: FileTarget;
  readonly load: LoadCell[];
  readonly traced: TracedCell[];
}

/** Lab flags here: quiet, and timeouts that never end a connection wrk is still using. */
const LAB_ARGS = ['--quiet', '--idle-timeout', '600', '--shutdown-timeout', '2'];

/** Bytes of one 200 response to wrk's GET for a file of `size` bytes: the core's own head, and the body. */
export function responseBytes(size: number): number {
  const job: FileJob = { kind: 'file', head: false, method: 'GET', target: '/', segments: [], directory: false, refused: undefined, range: undefined, connection: undefined };
  return fileReply(job, { kind: 'file', size, mtimeMs: Date.now(), name: fileName(size) }).head.length + size;
}

export function fileName(size: number): string {
  return size >= MiB ? `${size / MiB}m.bin` : `${size / KiB}k.bin`;
}

/** The served tree: one file of random bytes per size, in a fresh temporary directory. */
export function makeRoot(sizes: readonly number[]): { root: string; remove: () => void } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'iolab-files-'));
  const root = path.join(base, 'root');
  mkdirSync(root);
  for (const size of sizes) writeFileSync(path.join(root, fileName(size)), randomBytes(size));
  return { root, remove: () => rmSync(base, { recursive: true, force: true }) };
}

/**
 * The traced run's length: a lab that starts a Node process per connection spends its first
 * seconds under strace -f starting it (every call of a starting Node traced), so it gets longer.
 */
function tracedSeconds(target: FileTarget, plan: Plan): number {
  return target.children ? plan.tracedSeconds * CHILD_TRACE_FACTOR : plan.tracedSeconds;
}
const CHILD_TRACE_FACTOR = 4;

/** Seconds one target takes by the plan, for the progress line. */
export function plannedSeconds(plan: Plan): number {
  return 2 + plan.sizes.length * (plan.connections.length * (plan.seconds + plan.warmupSeconds + 0.3) + plan.tracedSeconds + 1.5);
}

export async function measureTarget(target: FileTarget, root: string, plan: Plan, progress: Progress): Promise<TargetResult> {
  const start = () => startLab(target.labId, [...target.args, '--protocol', 'files', '--root', root, ...LAB_ARGS]);
  const load: LoadCell[] = [];
  const traced: TracedCell[] = [];
  let server: LabProcess = await start();
  try {
    for (const size of plan.sizes) {
      const url = () => `http://${server.host}:${server.port}/${fileName(size)}`;
      // Far beyond one response (50 connections share the bandwidth for 64 MiB each): a run ends
      // with responses in flight rather than with timeouts and reconnections.
      const timeoutSeconds = 60;
      for (const connections of plan.connections) {
        progress.update(`${fileName(size)}, ${connections} connection${connections === 1 ? '' : 's'}`);
        // Lab 01 serves one connection at a time: after a run with more, it still owes the
        // connections wrk has closed their responses, so a fresh lab starts each run clean.
        const restart = async () => {
          if (!target.serial || connections === 1) return;
          await server.stop('SIGTERM');
          server = await start();
        };
        if (plan.warmupSeconds > 0) {
          await runWrk({ url: url(), connections, seconds: plan.warmupSeconds, timeoutSeconds });
          await restart();
        }
        const before = treeUsage(server.pid, { fds: false }).cpuMs;
        const wrk = await runWrk({ url: url(), connections, seconds: plan.seconds, timeoutSeconds });
        const serverCpuMs = treeUsage(server.pid, { fds: false }).cpuMs - before;
        load.push({ size, connections, wrk, serverCpuMs });
        await restart();
      }
      progress.update(`${fileName(size)} under strace`);
      let run: WrkRun | undefined;
      const calls = await countSystemCalls(server.pid, async () => {
        run = await runWrk({ url: url(), connections: 1, seconds: tracedSeconds(target, plan), timeoutSeconds: 30 });
      });
      traced.push({ size, requests: run!.requests, responses: run!.bytes / responseBytes(size), calls });
    }
  } finally {
    await server.stop('SIGTERM');
  }
  return { target, load, traced };
}
