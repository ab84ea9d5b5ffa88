/**
 * Step 3, scaling: CPU-bound HTTP (every request costs `--work-us` of CPU on the thread that
 * answers it) through autocannon, against lab 06 with 1 … cores workers, lab 04 (one loop) and
 * lab 03 (a pool of `--threads` = cores). Nothing is pinned: the server needs every core, and the
 * load generator (autocannon, in this process) runs beside it on the same cores. Its share of a
 * core is measured and reported, as is the server's CPU use.
 */

import { startLab } from '../../harness/launch.js';
import { runHttpLoad } from '../load/http-client.js';
import { WindowSampler, type WindowUsage } from '../kit/tree-sampler.js';
import { workerSummary } from './log-lines.js';
import type { ScalingRun, ScalingSettings } from './results.js';

/** What to start: the lab, its flags (workers or threads included), and how the report names it. */
export interface ScalingTarget {
  readonly lab: string;
  readonly label: string;
  readonly policy?: string;
  readonly cores: number;
  readonly args: readonly string[];
}

const WARMUP_MS = 1000;
/** A small body: the work, not the bytes, is the cost being scaled. */
const BODY_BYTES = 64;

export async function measureScaling(target: ScalingTarget, settings: ScalingSettings, warmupMs = WARMUP_MS): Promise<ScalingRun> {
  const lab = await startLab(target.lab, ['--quiet', '--protocol', 'http', '--work-us', String(settings.workUs), ...target.args]);
  let usage: WindowUsage | undefined;
  try {
    const sampler = new WindowSampler(lab.pid);
    const [window] = await runHttpLoad({
      host: lab.host,
      port: lab.port,
      connections: settings.connections,
      pipelining: 1,
      durationMs: settings.durationMs,
      warmupMs,
      warmupMaxMs: 10_000,
      bodyBytes: BODY_BYTES,
      onWindowStart: () => sampler.start(),
      onWindowEnd: () => (usage = sampler.stop()),
    });
    if (!window || !usage) throw new Error(`no measured window for ${target.label}`);
    await lab.stop('SIGTERM');
    const summary = workerSummary(lab.output().stdout);
    return {
      lab: target.lab,
      label: target.label,
      ...(target.policy === undefined ? {} : { policy: target.policy }),
      cores: target.cores,
      requestsPerSec: Math.round(window.requestsPerSec),
      errors: window.errors + window.timeouts + window.non2xx + window.mismatches,
      serverCores: usage.serverCpuMs === null ? null : Math.round((usage.serverCpuMs / usage.wallMs) * 100) / 100,
      loadGenCorePct: Math.round(usage.loadGenCorePct),
      ...(summary.roundTrips.length > 0 ? { perWorkerRoundTrips: summary.roundTrips, perWorkerConnections: summary.connections } : {}),
    };
  } finally {
    await lab.stop('SIGTERM');
  }
}
