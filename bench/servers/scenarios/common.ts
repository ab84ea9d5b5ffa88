/** Pieces every scenario's metrics share: the window's cost to the server and to the client. */

import { WindowSampler, type WindowUsage } from '../../kit/tree-sampler.js';
import { LATENCY_METRICS, type LatencyMetric, type USAGE_METRICS } from '../results.js';
import type { LatencySummary } from '../../load/latency.js';
import type { RunContext } from '../run.js';

/**
 * Server CPU, CPU µs per unit of work (round trip, request, connection), peak memory and the
 * load generator's share of its core. CPU per unit is the efficiency figure: it stays valid when
 * the load generator, not the server, set the pace.
 */
export function usageMetrics(usage: WindowUsage, units: number): Record<(typeof USAGE_METRICS)[number], number | null> {
  return {
    serverCpuMs: usage.serverCpuMs,
    cpuUsPerUnit: usage.serverCpuMs === null || units === 0 ? null : (usage.serverCpuMs * 1000) / units,
    // Cores the server kept busy on average: 1.0 is one core for the whole window.
    serverCores: usage.serverCpuMs === null ? null : usage.serverCpuMs / usage.wallMs,
    peakRssBytes: usage.peakRssBytes,
    peakProcesses: usage.peakProcesses,
    loadGenCorePct: usage.loadGenCorePct,
  };
}

/** The percentiles as metrics, named `p50Us`, ... or, with a prefix, e.g. `firstEchoP50Us`. */
export function latencyMetrics<Prefix extends string = ''>(latency: LatencySummary, prefix?: Prefix): Record<LatencyMetric<Prefix>, number | null> {
  const value = { p50Us: latency.p50, p90Us: latency.p90, p99Us: latency.p99, p999Us: latency.p999, maxUs: latency.max };
  const name = (key: string) => (prefix ? `${prefix}${key[0]!.toUpperCase()}${key.slice(1)}` : key);
  return Object.fromEntries(LATENCY_METRICS.map((key) => [name(key), latency.count ? value[key] : null])) as Record<LatencyMetric<Prefix>, number | null>;
}

/** The warm-up waits until every connection has been answered once, but never longer than this. */
export const WARMUP_MAX_MS = 30_000;

/** One sampler per measured window, started and stopped by the load generator's window hooks. */
export class Samplers {
  readonly #pid: number | undefined;
  readonly #intervalMs: number | undefined;
  readonly #running = new Map<number, WindowSampler>();
  readonly #usage = new Map<number, WindowUsage>();

  constructor(pid: number | undefined, intervalMs?: number) {
    this.#pid = pid;
    this.#intervalMs = intervalMs;
  }
  start(window: number): void {
    const sampler = new WindowSampler(this.#pid, this.#intervalMs);
    this.#running.set(window, sampler);
    sampler.start();
  }
  stop(window: number): void {
    this.#usage.set(window, this.#running.get(window)!.stop());
  }
  usage(window: number): WindowUsage {
    const usage = this.#usage.get(window);
    if (!usage) throw new Error(`measured window ${window} never closed`);
    return usage;
  }
}

/**
 * The window clock's settings for a load generator that measures `repeats` windows back to back,
 * with each window's server sample started and stopped by its hooks.
 */
export function measuredWindows(context: RunContext, repeats: number, samplers: Samplers, onRepeat: (index: number) => void) {
  return {
    durationMs: context.settings.duration * 1000,
    windows: repeats,
    warmupMs: context.settings.warmup * 1000,
    warmupMaxMs: WARMUP_MAX_MS,
    onWindowStart: (w: number) => {
      onRepeat(w);
      samplers.start(w);
    },
    onWindowEnd: (w: number) => samplers.stop(w),
  };
}
