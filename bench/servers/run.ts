/**
 * The runner: every selected scenario against every selected server, in a fixed order.
 *
 * For each scenario and each server:
 *   1. start the server fresh (a child process on a free port) and pin its tree to the server's
 *      cores (every core for the CPU-bound scenario);
 *   2. for each cell: open the connections, warm up once, measure the repeats as windows back to
 *      back (the scenario's job), close, then wait until the server is quiet again: its accept
 *      queue empty, its extra processes and sockets gone;
 *   3. stop the server and wait for its whole tree to exit, whatever happened in between.
 * The capacity scenario starts a fresh server for every level and repeat instead (memory per
 * connection must start from a clean process), through the same `withServer`.
 *
 * A server that cannot run, or a scenario that does not apply to it, still gets its rows, saying
 * why: nothing is skipped silently.
 */

import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { pinTree, type CpuPlan } from '../../harness/affinity.js';
import { repoRoot, stopAllLabs } from '../../harness/launch.js';
import type { Stamp } from '../kit/stamp.js';
import { listenQueue } from '../../harness/sockets.js';
import { treeMemory } from '../../harness/processes.js';
import type { BenchSettings } from './options.js';
import { describeLabs } from '../kit/labs.js';
import { Progress } from '../kit/progress.js';
import type { BenchResults, CellResult, CellSpec, RunResult, ScenarioId, ScenarioResult, TargetInfo } from './results.js';
import { SCHEMA_VERSION } from './results.js';
import type { RunningTarget, StartConfig, TargetSpec } from './targets.js';

export interface RunContext {
  readonly settings: BenchSettings;
  readonly cpus: CpuPlan | undefined;
  /** The machine's cores, counted before the harness pinned itself. */
  readonly cores: number;
  readonly progress: Progress;
}

/** What a scenario decides about the server it starts; the runner adds the machine's facts. */
export type ServerConfig = Omit<StartConfig, 'machineCores'>;

/** One scenario: its grid of cells and how to measure one target across it. */
export interface Scenario {
  readonly id: ScenarioId;
  readonly title: string;
  readonly protocol: 'echo' | 'http';
  /** The server may use every core (the CPU-bound scenario), not only its pinned share. */
  readonly allCores?: boolean;
  cells(settings: BenchSettings): CellSpec[];
  /** Planned seconds for one cell on one target, all repeats included, for the time-left estimate. */
  estimate(settings: BenchSettings, cell: CellSpec, target: TargetSpec): number;
  facts?(settings: BenchSettings, cpus: CpuPlan | undefined, cores: number): Record<string, number | string>;
  /**
   * Which servers this scenario runs, to keep the full run short: undefined when it runs them
   * all, otherwise why a server is left out (the report lists it).
   */
  leaveOut?(target: TargetSpec, settings: BenchSettings): string | undefined;
  run(target: TargetSpec, cells: CellSpec[], context: RunContext): Promise<CellResult[]>;
}

export async function measure(
  settings: BenchSettings,
  scenarios: readonly Scenario[],
  targets: readonly TargetSpec[],
  cpus: CpuPlan | undefined,
  /** Taken before the harness pinned itself, so it counts every core. */
  stamp: Stamp,
): Promise<BenchResults> {
  const started = performance.now();
  const unavailable = new Map(targets.map((t) => [t.id, t.unavailable()]));
  const planned = scenarios.reduce(
    (sum, scenario) =>
      sum +
      targets.reduce((inner, target) => {
        if (unavailable.get(target.id) || !target.protocols.includes(scenario.protocol) || scenario.leaveOut?.(target, settings)) return inner;
        return inner + SERVER_START_S + scenario.cells(settings).reduce((s, cell) => s + scenario.estimate(settings, cell, target), 0);
      }, 0),
    0,
  );
  const progress = new Progress('bench', planned);
  const context: RunContext = { settings, cpus, cores: stamp.cores, progress };
  for (const [id, why] of unavailable) if (why) progress.note(`${id}: ${why}`);

  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
    const cells = scenario.cells(settings);
    const cellResults: CellResult[] = [];
    const leftOut: { target: string; reason: string }[] = [];
    for (const target of targets) {
      const why = unavailable.get(target.id);
      const notHere = scenario.leaveOut?.(target, settings);
      if (notHere) {
        leftOut.push({ target: target.id, reason: notHere });
        continue;
      }
      if (why) {
        cellResults.push(...cells.map((c) => ({ target: target.id, cell: c.key, status: 'unavailable' as const, reason: why, runs: [] })));
      } else if (!target.protocols.includes(scenario.protocol)) {
        const reason = `speaks ${target.protocols.join(' and ')} only; this scenario needs ${scenario.protocol}`;
        cellResults.push(...cells.map((c) => ({ target: target.id, cell: c.key, status: 'not-applicable' as const, reason, runs: [] })));
      } else {
        cellResults.push(...(await scenario.run(target, cells, context)));
      }
    }
    results.push({
      id: scenario.id,
      cells,
      results: cellResults,
      serverCpus: cpus ? (scenario.allCores ? cpus.all : cpus.server) : undefined,
      facts: scenario.facts?.(settings, cpus, stamp.cores) ?? {},
      ...(leftOut.length ? { leftOut } : {}),
    });
  }
  const wallSeconds = (performance.now() - started) / 1000;
  progress.done();

  const targetInfo: TargetInfo[] = targets.map((t) => ({
    id: t.id,
    label: t.label,
    model: t.model,
    kind: t.kind,
    protocols: t.protocols,
    ...(t.limit ? { limit: t.limit } : {}),
    ...(t.traits ? { traits: t.traits } : {}),
    ...(t.multiCore ? { multiCore: true } : {}),
    ...(unavailable.get(t.id) ? { unavailable: unavailable.get(t.id)! } : {}),
  }));
  return {
    experiment: 'bench',
    schema: SCHEMA_VERSION,
    stamp,
    labs: describeLabs(targets.filter((t) => t.kind === 'lab').map((t) => t.id.split('@')[0]!)),
    // Paths relative to the repository: the file is committed and read on other machines.
    settings: { ...settings, output: path.relative(repoRoot, settings.output), markdown: path.relative(repoRoot, settings.markdown) },
    cpus: { cores: stamp.cores, loadGenerator: cpus?.loadGenerator, server: cpus?.server, all: cpus?.all },
    targets: targetInfo,
    scenarios: results,
    wallSeconds,
    loadAverage: { start: stamp.loadAverage1m ?? os.loadavg()[0]!, end: os.loadavg()[0]! },
  };
}

/** A started server with what the runner learned about it right after start. */
export interface ServerUnderTest extends RunningTarget {
  readonly baseline: { readonly processes: number; readonly fds: number };
}

/**
 * Starts `target`, pins it, runs `body`, and stops it even when `body` throws. A server that will
 * not start becomes an error for the caller to record.
 */
export async function withServer<T>(
  target: TargetSpec,
  config: ServerConfig,
  context: RunContext,
  allCores: boolean,
  body: (server: ServerUnderTest) => Promise<T>,
): Promise<T> {
  const running = await target.start({ ...config, machineCores: context.cores });
  try {
    if (running.pid !== undefined && context.cpus) pinTree(running.pid, allCores ? context.cpus.all : context.cpus.server);
    const memory = running.pid === undefined ? { processes: 0, fds: 0 } : treeMemory(running.pid);
    return await body({ ...running, baseline: { processes: memory.processes, fds: memory.fds } });
  } finally {
    await running.stop();
  }
}

/**
 * Thrown by a cell that finds the server (or the machine) cannot reach it: the cell is recorded
 * with this status and reason ('cannot': tried and not held; 'not-attempted': ruled out before
 * trying), every later cell as not attempted, and the server is stopped as usual. For scenarios
 * whose cells rise (idle connections): the first level a server cannot reach ends its rows.
 */
export class CannotReach extends Error {
  override readonly name = 'CannotReach';
  constructor(readonly status: 'cannot' | 'not-attempted', reason: string) {
    super(reason);
  }
}

/**
 * The usual lifecycle (steps 1-3 above): one server for every cell of a scenario. `measureCell`
 * measures one cell: one warm-up, then `repeats` windows back to back, one RunResult each, calling
 * `onRepeat` as each window starts. If the server dies, the cells left are recorded as failed with
 * the server's own last words; a CannotReach ends the rows as it says.
 */
export async function runCellsOnOneServer(
  scenario: Scenario,
  target: TargetSpec,
  cells: CellSpec[],
  context: RunContext,
  config: ServerConfig,
  measureCell: (server: ServerUnderTest, cell: CellSpec, repeats: number, onRepeat: (index: number) => void) => Promise<RunResult[]>,
): Promise<CellResult[]> {
  const results: CellResult[] = [];
  const { settings, progress } = context;
  try {
    await withServer(target, config, context, scenario.allCores === true, async (server) => {
      for (const cell of cells) {
        const dead = server.exitStatus();
        if (dead) throw new Error(`the server ${dead}`);
        const planned = scenario.estimate(settings, cell, target);
        const runs = await measureCell(server, cell, settings.repeats, (index) =>
          progress.step(label(scenario, target, cell, index + 1, settings.repeats), index === 0 ? planned - settings.repeats * settings.duration + settings.duration : settings.duration),
        );
        const quiet = await settle(server);
        const last = runs.length - 1;
        results.push({
          target: target.id,
          cell: cell.key,
          status: 'ok',
          runs: quiet ? runs.map((run, i) => (i === last ? { ...run, notes: [...run.notes, quiet] } : run)) : runs,
        });
      }
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
    const [stopped, ...rest] = cells.slice(results.length);
    progress.note(`${scenario.id} · ${target.id}${error instanceof CannotReach && stopped ? ` · ${stopped.title}` : ''}: ${reason}`);
    if (error instanceof CannotReach && stopped) {
      results.push({ target: target.id, cell: stopped.key, status: error.status, reason, runs: [] });
      for (const cell of rest) results.push({ target: target.id, cell: cell.key, status: 'not-attempted', reason: `not attempted: stopped at ${stopped.title}`, runs: [] });
    } else {
      for (const cell of cells.slice(results.length)) results.push({ target: target.id, cell: cell.key, status: 'failed', reason, runs: [] });
    }
  }
  return results;
}

/** The progress line's text for one run of one cell. */
export function label(scenario: Scenario, target: TargetSpec, cell: CellSpec, repeat: number, of: number): string {
  return `${scenario.id} · ${target.id} · ${cell.title} · run ${repeat}/${of}`;
}

/**
 * Planned seconds to start a server and stop its tree, once per scenario and server: a cold Node
 * start is about half a second on a busy 2-core machine, and a SIGTERM'd lab takes a moment more
 * to close. Only the progress line's time estimate uses it.
 */
const SERVER_START_S = 0.7;

/** How long the server gets to let go of a run's connections before the next run starts. */
const SETTLE_TIMEOUT_MS = 15_000;

/**
 * Waits until the server is back where it started: accept queue empty (a serial server works
 * through connections the last run left queued), no extra processes (a forking server's
 * children have exited), about as many open files as at start. Returns a note if it never was.
 */
export async function settle(server: ServerUnderTest): Promise<string | undefined> {
  if (server.pid === undefined) return undefined;
  const started = performance.now();
  for (;;) {
    const queue = listenQueue(server.port)?.acceptQueueDepth ?? 0;
    const now = treeMemory(server.pid);
    // A few descriptors of slack: a runtime may open one lazily (a timer fd, a log file).
    const quiet = queue === 0 && now.processes <= server.baseline.processes && now.fds <= server.baseline.fds + 4;
    if (quiet) return undefined;
    if (server.exitStatus() !== undefined) return undefined;
    if (performance.now() - started > SETTLE_TIMEOUT_MS) {
      return `server not quiet ${SETTLE_TIMEOUT_MS / 1000} s after the run (accept queue ${queue}, ${now.processes} processes, ${now.fds} fds; at start ${server.baseline.processes} and ${server.baseline.fds})`;
    }
    await delay(50); // polling a condition the server reaches on its own
  }
}

/** For SIGINT/SIGTERM: kill every server the run started, children included. */
export const stopEverything = stopAllLabs;
