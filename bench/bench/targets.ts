/**
 * The registry of servers under test: the four labs, the C reference and, with `--target`, a
 * server started elsewhere. Like fastify/benchmarks' one entry per framework, each entry says how
 * to start its server and nothing else; every scenario drives every entry the same way.
 *
 * Labs always run compiled (`node dist/labs/ID/main.js`), through the same launcher the tests
 * use, so the benchmark measures the program a user runs with `make lab-NN`.
 */

import { existsSync } from 'node:fs';
import type { ProtocolName } from '../../shared/protocol.js';
import { labEntry, startExecutable, startLab, type LabProcess } from '../lib/launch.js';
import { buildReference, REFERENCE_BINARY } from '../reference/build.js';

export interface TargetSpec {
  /** Directory name for labs, "c-epoll" for the reference, "remote" for `--target`. */
  readonly id: string;
  /** Short name for chart axes. */
  readonly label: string;
  /** How concurrency arises, as the report's legend says it. */
  readonly model: string;
  readonly kind: 'lab' | 'reference' | 'remote';
  readonly protocols: readonly ProtocolName[];
  /**
   * What the model itself limits, stated where a measurement shows the limit (never a number):
   * the report quotes it next to the measured figure that shows it.
   */
  readonly limit?: string;
  /**
   * Only for the progress line's time estimate: seconds of start-up per connection (a process
   * start), and whether connections wait unanswered in the accept queue (a serial server).
   */
  readonly startCost?: { readonly perConnection?: number; readonly queues?: boolean };
  /** Starts a fresh server; the caller stops it. */
  start(config: StartConfig): Promise<RunningTarget>;
  /** Why this target cannot run at all (not built, no compiler), or undefined when it can. */
  unavailable(): string | undefined;
}

export interface StartConfig {
  readonly protocol: ProtocolName;
  readonly workUs: number;
  /** Most connections the server may hold: above the scenario's own count. */
  readonly maxConns: number;
  /** The machine's cores, counted before any pinning (a pinned process sees only its own). */
  readonly machineCores: number;
}

export interface RunningTarget {
  readonly host: string;
  readonly port: number;
  /** The server's root process, or undefined for a server started elsewhere. */
  readonly pid: number | undefined;
  /** Stops the server and waits for its whole tree to exit. */
  stop(): Promise<void>;
  /** Undefined while the server runs; once it has exited, how, with the end of its stderr. */
  exitStatus(): string | undefined;
}

/** Flags every lab takes (shared/cli.ts), for a quiet server that outlasts any benchmark step. */
function labArgs(config: StartConfig): string[] {
  return [
    '--quiet',
    '--protocol', config.protocol,
    '--work-us', String(config.workUs),
    '--max-conns', String(config.maxConns),
    // Longer than any step: the harness, not a timeout, decides when a connection ends.
    '--idle-timeout', '600',
    // Stopping a lab should not wait long for clients the harness has already closed.
    '--shutdown-timeout', '2',
  ];
}

function running(server: LabProcess): RunningTarget {
  return {
    host: server.host,
    port: server.port,
    pid: server.pid,
    async stop() {
      await server.stop('SIGTERM');
    },
    exitStatus() {
      const { exitCode, signalCode } = server.child;
      if (exitCode === null && signalCode === null) return undefined;
      const stderr = server.output().stderr.trim().split('\n').slice(-3).join(' / ');
      return `exited (${signalCode ?? `code ${exitCode}`})${stderr ? `: ${stderr}` : ''}`;
    },
  };
}

interface LabOptions {
  readonly limit?: string;
  readonly startCost?: TargetSpec['startCost'];
  readonly extraArgs?: (config: StartConfig) => string[];
  /** A connection cap the harness never raises, because the lab's own default is the lesson. */
  readonly maxConnsCap?: number;
}

function lab(id: string, label: string, model: string, options: LabOptions = {}): TargetSpec {
  return {
    id,
    label,
    model,
    kind: 'lab',
    protocols: ['echo', 'http'],
    ...(options.limit ? { limit: options.limit } : {}),
    ...(options.startCost ? { startCost: options.startCost } : {}),
    start: async (config) => {
      const capped = options.maxConnsCap === undefined ? config : { ...config, maxConns: Math.min(config.maxConns, options.maxConnsCap) };
      return running(await startLab(id, [...labArgs(capped), ...(options.extraArgs?.(capped) ?? [])]));
    },
    unavailable: () => (existsSync(labEntry(id)) ? undefined : `not built: dist/labs/${id}/main.js does not exist (run \`make build\`)`),
  };
}

export const LABS: readonly TargetSpec[] = [
  lab('01-serial', '01 serial', 'serial: one connection at a time, blocking system calls', {
    limit: 'serves one connection at a time: the others wait in the kernel accept queue until it closes',
    startCost: { queues: true },
  }),
  lab('02-process-per-connection', '02 process/conn', 'one child process per connection', {
    limit: 'each connection costs a whole Node process, so the lab caps its children at its default --max-conns of 100 and closes connections beyond it',
    startCost: { perConnection: 0.06 },
    // Run as a user runs it: 1,000 children would be 1,000 Node processes (tens of GB of RSS).
    maxConnsCap: 100,
  }),
  lab('03-worker-pool', '03 worker pool', "event loop for I/O, a pool of worker threads (`--threads` = the machine's cores) for the work", {
    // The lab's default is the cores it sees, and a process started by the pinned harness sees
    // one: say the machine's count explicitly, as a user's `make lab-03` would get it.
    extraArgs: (config) => ['--threads', String(config.machineCores)],
  }),
  lab('04-evented', '04 evented', 'one thread, one event loop (epoll via libuv)'),
];

export const REFERENCE: TargetSpec = {
  id: 'c-epoll',
  label: 'C epoll',
  model: 'C reference: one thread, epoll, no protocol parsing (bench/reference/echo-epoll.c)',
  kind: 'reference',
  protocols: ['echo'],
  // Speaks echo only and takes no limits: its one bound is the process's fd limit.
  start: async () => running(await startExecutable('c-epoll', REFERENCE_BINARY)),
  unavailable: () => buildReference(),
};

/** A server someone started elsewhere: only the client side can be measured. */
export function remoteTarget(host: string, port: number, protocol: ProtocolName): TargetSpec {
  return {
    id: 'remote',
    label: `${host}:${port}`,
    model: `server started elsewhere at ${host}:${port} (${protocol}); server-side figures unavailable`,
    kind: 'remote',
    protocols: [protocol],
    start: async () => ({ host, port, pid: undefined, stop: async () => {}, exitStatus: () => undefined }),
    unavailable: () => undefined,
  };
}

export const ALL_TARGET_IDS = [...LABS.map((t) => t.id), REFERENCE.id];

export function targetsById(ids: readonly string[]): TargetSpec[] {
  return [...LABS, REFERENCE].filter((t) => ids.includes(t.id));
}
