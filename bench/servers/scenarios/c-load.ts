/**
 * One cell's windows through the C load generator (bench/load/c-echo-client.c): one client run
 * per repeat, each with its own warm-up, the server sampled over exactly the client's window.
 *
 * Why C and not TypeScript: a TypeScript client saturated its own core before any server here
 * did, so it measured its own ceiling. The C client costs less per round trip than every Node
 * server; against the C reference it costs about as much as the server (loopback makes the
 * sender pay for the receiver's softirq work), which the report says where it happens.
 */

import { CEchoErrors, runCEchoClient, type CEchoResult } from '../../load/c-client.js';
import { buildCEchoClient } from '../../reference/build.js';
import type { CellResult, CellSpec, ClientCpuMetric, LatencyMetric, USAGE_METRICS, WarmupMetric } from '../results.js';
import { settle, type RunContext, type ServerUnderTest } from '../run.js';
import type { TargetSpec } from '../targets.js';
import { WARMUP_STALL_MS } from '../../load/window.js';
import { latencyMetrics, Samplers, usageMetrics, WARMUP_MAX_MS } from './common.js';

/** Outstanding replies on loopback arrive within milliseconds; this is ample and keeps cells short. */
const DRAIN_S = 0.3;

/** Why the C load generator cannot run here (no compiler), or undefined. */
export function cClientUnavailable(): string | undefined {
  return buildCEchoClient();
}

/** Rows for a server the C client cannot measure: every cell says why. */
export function cannotMeasure(target: TargetSpec, cells: readonly CellSpec[], reason: string): CellResult[] {
  return cells.map((c) => ({ target: target.id, cell: c.key, status: 'unavailable' as const, reason, runs: [] }));
}

export interface CLoad {
  readonly connections: number;
  readonly size: number;
  /**
   * Least seconds of warm-up before each window; it goes on until every connection has been
   * answered once (a forking server's children are all up), as the other load generators' does.
   */
  readonly warmupS: number;
  /**
   * A server that leaves connections waiting in its accept queue (serial) never answers most of
   * them: its warm-up stops once none was newly answered for WARMUP_STALL_MS. Any other server
   * answers every connection in the end, however slowly its children start on a busy core, so
   * its warm-up waits for all of them, up to the bound.
   */
  readonly queues?: boolean;
  /**
   * Wait before each run after the first until the server is back at rest (settle): a run's
   * connections are its own, and a forking server's children from the run before still hold
   * descriptors while they exit. Not for a scenario that holds connections across its runs on
   * purpose (idle), whose server is never "back at rest" between them.
   */
  readonly settleBetweenRuns?: boolean;
}

/** The figures every scenario measured with the C client reports from one run. */
export type CClientMetrics = Record<
  'roundTripsPerSec' | LatencyMetric | 'errors' | 'fewest' | 'most' | ClientCpuMetric | WarmupMetric | (typeof USAGE_METRICS)[number],
  number | null
>;

/**
 * `repeats` client runs against `server`. The figures are the client's (latency, fairness, its own
 * CPU) and the server tree's CPU over the same window.
 */
export async function cClientWindows(
  server: ServerUnderTest,
  load: CLoad,
  context: RunContext,
  repeats: number,
  onRepeat: (index: number) => void,
): Promise<{ result: CEchoResult; metrics: CClientMetrics; notes: string[] }[]> {
  const out: { result: CEchoResult; metrics: CClientMetrics; notes: string[] }[] = [];
  for (let w = 0; w < repeats; w++) {
    const unsettled = w > 0 && load.settleBetweenRuns ? await settle(server) : undefined;
    onRepeat(w);
    const samplers = new Samplers(server.pid);
    // The server over the warm-up too: what its start-up (a child per connection) costs.
    const warmup = new Samplers(server.pid);
    warmup.start(w);
    let result: CEchoResult;
    const notes: string[] = unsettled ? [unsettled] : [];
    try {
      result = await runCEchoClient({
        host: server.host,
        port: server.port,
        connections: load.connections,
        size: load.size,
        warmupSeconds: load.warmupS,
        warmupMaxSeconds: WARMUP_MAX_MS / 1000,
        warmupStallSeconds: (load.queues ? WARMUP_STALL_MS : WARMUP_MAX_MS) / 1000,
        seconds: context.settings.duration,
        drainSeconds: DRAIN_S,
        ...(context.cpus ? { cpus: context.cpus.loadGenerator } : {}),
        onWindowStart: () => {
          warmup.stop(w);
          samplers.start(w);
        },
        onWindowEnd: () => samplers.stop(w),
      });
    } catch (error) {
      // Errors in the echo are a measurement (counted in the table), not a harness failure.
      if (!(error instanceof CEchoErrors)) throw error;
      result = error.result;
      const first = result.firstErrors[0];
      if (first) notes.push(`first error: ${first.kind}: ${first.detail} (connection ${first.connection})`);
    }
    if (result.warmupEnd === 'bound') {
      notes.push(`the warm-up hit its ${result.warmupMaxS} s bound with ${result.answeredInWarmup} of ${result.connections} connections answered`);
    }
    const usage = samplers.usage(w);
    const steady = usageMetrics(usage, result.roundTrips);
    // The load generator is the C process, not this harness: its own CPU over its own window.
    const clientCpuS = result.cpu.userS + result.cpu.sysS;
    out.push({
      result,
      metrics: {
        roundTripsPerSec: result.roundTripsPerSec,
        ...latencyMetrics({ ...result.latencyUs }),
        errors: result.errors.total,
        fewest: result.fewest,
        most: result.most,
        ...steady,
        warmupS: result.warmupTookS,
        startCpuUsPerConnection: startCost(warmup.usage(w).serverCpuMs, result, steady.cpuUsPerUnit),
        loadGenCorePct: 100 * result.cpu.fraction,
        loadGenCpuUsPerUnit: result.roundTrips > 0 ? (clientCpuS * 1e6) / result.roundTrips : null,
      },
      notes,
    });
  }
  return out;
}

/**
 * The server's CPU to get each connection answered once: its CPU over the warm-up less what the
 * warm-up's round trips cost at the steady rate measured in the window, per connection. For a
 * server that starts a process per connection this is the process's start-up; for the others it
 * is near 0 (the noise of two samples).
 */
function startCost(warmupCpuMs: number | null, result: CEchoResult, steadyUsPerTrip: number | null): number | null {
  if (warmupCpuMs === null || steadyUsPerTrip === null || result.answeredInWarmup === 0) return null;
  return Math.max(0, warmupCpuMs * 1000 - result.warmupRoundTrips * steadyUsPerTrip) / result.answeredInWarmup;
}
