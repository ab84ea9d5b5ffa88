/**
 * The servers under test: every lab of the registry (labs/index.ts) in each of its variants, the C reference and, with `--target`, a
 * server started elsewhere. Like fastify/benchmarks' one entry per framework, each entry says how
 * to start its server and nothing else; every scenario drives every entry the same way.
 *
 * Labs always run compiled (`node dist/labs/ID/main.js`), through the same launcher the tests
 * use, so the benchmark measures the program a user runs with `make lab-NN`.
 */

import { existsSync } from 'node:fs';
import { labVariants, type LabInfo, type LabTraits, type LabVariant } from '../../labs/index.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { labEntry, startExecutable, startLab, startNodeScript, type LabProcess } from '../../harness/launch.js';
import { buildReference, buildThreadsReference, PLAIN_NODE_SCRIPT, REFERENCE_BINARY, THREADS_REFERENCE_BINARY } from '../reference/build.js';
import { C_REFERENCE_ID, C_THREADS_REFERENCE_ID, PLAIN_NODE_ID } from './results.js';

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
  /** A lab's traits, copied into the results for the report's comparisons. */
  readonly traits?: LabTraits;
  /** Which of its lab's variants this is (0 for the first, and for every non-lab target). */
  readonly variantIndex: number;
  /** The server can use more than one core (its lab has a cores flag). */
  readonly multiCore: boolean;
  /**
   * Only for the progress line's time estimate: seconds of start-up per connection (a process
   * start), and whether connections wait unanswered in the accept queue (a serial server).
   */
  readonly startCost?: { readonly perConnection?: number; readonly queues?: boolean; readonly maxConnections?: number };
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
function labArgs(traits: LabTraits, config: StartConfig): string[] {
  return [
    '--quiet',
    '--protocol', config.protocol,
    '--work-us', String(config.workUs),
    // A lab whose only queue is the kernel's takes no connection cap (shared/cli.ts).
    ...(traits.kernelQueueOnly ? [] : ['--max-conns', String(config.maxConns)]),
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

/**
 * For the progress line's time estimate only: seconds one connection costs a server that starts a
 * child process per connection (a Node process starts in roughly 60 ms on a 2-core machine).
 */
const PROCESS_START_S = 0.06;

/** A lab as the benchmark drives it, everything taken from the registry (labs/index.ts). */
function labTarget(lab: LabInfo, variant: LabVariant, variantIndex: number): TargetSpec {
  const id = variant.name ? `${lab.id}@${variant.name.replace(/[^A-Za-z0-9]+/g, '-')}` : lab.id;
  // A connection cap the harness never raises, because the lab's own default is the lesson
  // (1,000 children would be 1,000 Node processes: tens of GB of RSS).
  const cap = lab.defaults.maxConns;
  return {
    id,
    label: variant.name ? `${lab.label} (${variant.name})` : lab.label,
    model: lab.model,
    kind: 'lab',
    protocols: ['echo', 'http'],
    ...(lab.limit ? { limit: lab.limit } : {}),
    traits: lab.traits,
    variantIndex,
    multiCore: lab.coresFlag !== undefined,
    // A pool of threads (lab 08 prethreaded) leaves the clients beyond it waiting in the accept queue, as a serial server does.
    startCost: { perConnection: lab.traits.children ? PROCESS_START_S : 0, queues: lab.traits.kernelQueueOnly || variant.servedAtOnce !== undefined, ...(cap === undefined ? {} : { maxConnections: cap }) },
    start: async (config) => {
      const capped = cap === undefined ? config : { ...config, maxConns: Math.min(config.maxConns, cap) };
      // A lab whose default is the cores it sees would see one in the pinned harness: say the
      // machine's count explicitly, as a user's `make lab-NN` gets it.
      const cores = lab.coresFlag ? [lab.coresFlag, String(config.machineCores)] : [];
      return running(await startLab(lab.id, [...labArgs(lab.traits, capped), ...cores, ...variant.args]));
    },
    unavailable: () => (existsSync(labEntry(lab.id)) ? undefined : `not built: dist/labs/${lab.id}/main.js does not exist (run \`make build\`)`),
  };
}

/** Every lab in every variant the registry lists. */
export const LAB_TARGETS: readonly TargetSpec[] = labVariants().map(({ lab, variant }) => labTarget(lab, variant, lab.variants.indexOf(variant)));

/**
 * The plain-Node reference (bench/reference/plain-node.ts): between the C reference and a lab it
 * splits the gap into what Node costs and what the lab's model costs.
 */
export const PLAIN_NODE: TargetSpec = {
  id: PLAIN_NODE_ID,
  label: 'plain Node',
  model: 'Node reference: net.Server echoing each chunk, no limits, no parsing (bench/reference/plain-node.ts)',
  kind: 'reference',
  protocols: ['echo'],
  variantIndex: 0,
  multiCore: false,
  start: async () => running(await startNodeScript(PLAIN_NODE_ID, PLAIN_NODE_SCRIPT)),
  unavailable: () => (existsSync(PLAIN_NODE_SCRIPT) ? undefined : 'not built: dist/bench/reference/plain-node.js does not exist (run `make build`)'),
};

export const REFERENCE: TargetSpec = {
  id: C_REFERENCE_ID,
  label: 'C epoll',
  model: 'C reference: one thread, epoll, no protocol parsing (bench/reference/echo-epoll.c)',
  kind: 'reference',
  protocols: ['echo'],
  variantIndex: 0,
  multiCore: false,
  // Speaks echo only and takes no limits: its one bound is the process's fd limit.
  start: async () => running(await startExecutable(C_REFERENCE_ID, REFERENCE_BINARY)),
  unavailable: () => buildReference(),
};

/**
 * The threads reference (bench/reference/echo-threads.c): a POSIX thread per connection blocking in
 * read and write, beside lab 08 as the epoll one is beside lab 05, so a report can tell what a
 * thread costs from what lab 08's V8 isolate per thread costs.
 */
export const THREADS_REFERENCE: TargetSpec = {
  id: C_THREADS_REFERENCE_ID,
  label: 'C threads',
  model: 'C reference: a thread per connection, blocking read and write, no protocol parsing (bench/reference/echo-threads.c)',
  kind: 'reference',
  protocols: ['echo'],
  variantIndex: 0,
  multiCore: true,
  start: async () => running(await startExecutable(C_THREADS_REFERENCE_ID, THREADS_REFERENCE_BINARY, ['--threads', 'per-connection'])),
  unavailable: () => buildThreadsReference(),
};

/** A server someone started elsewhere: only the client side can be measured. */
export function remoteTarget(host: string, port: number, protocol: ProtocolName): TargetSpec {
  return {
    id: 'remote',
    label: `${host}:${port}`,
    model: `server started elsewhere at ${host}:${port} (${protocol}); server-side figures unavailable`,
    kind: 'remote',
    protocols: [protocol],
    variantIndex: 0,
    multiCore: false,
    start: async () => ({ host, port, pid: undefined, stop: async () => {}, exitStatus: () => undefined }),
    unavailable: () => undefined,
  };
}

export const ALL_TARGET_IDS = [...LAB_TARGETS.map((t) => t.id), PLAIN_NODE.id, REFERENCE.id, THREADS_REFERENCE.id];

export function targetsById(ids: readonly string[]): TargetSpec[] {
  return [...LAB_TARGETS, PLAIN_NODE, REFERENCE, THREADS_REFERENCE].filter((t) => ids.includes(t.id));
}
