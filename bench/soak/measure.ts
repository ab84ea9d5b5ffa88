/**
 * One lab's soak, in steps:
 *   1. Start the lab's real entry in http mode on a free port; one request warms it up; wait until
 *      it is at rest and note its baseline (memory, descriptors).
 *   2. For the soak's duration, autocannon keeps `connections` keep-alive connections busy while
 *      `churners` clients connect, make one request and close, over and over; the sampler notes
 *      memory and descriptors every interval.
 *   3. Stop the load and give the server up to SETTLE_MS to let go of everything: descriptors back
 *      to the baseline and no children left is what a server without leaks does.
 *   4. SIGTERM, and note the exit status.
 */

import autocannon from 'autocannon';
import { startLab, type LabProcess } from '../../harness/launch.js';
import { childPids, openFds, stat, treeUsage } from '../../harness/processes.js';
import { churn, type ChurnCounts } from '../load/http-churn-client.js';
import { soakSampler, type SoakSample } from './sample.js';

export interface SoakConfig {
  readonly seconds: number;
  /** autocannon keep-alive connections. */
  readonly connections: number;
  /** Clients cycling connect → request → close. */
  readonly churners: number;
  readonly sampleMs: number;
}

export interface LabSoak {
  readonly lab: string;
  readonly baseline: { readonly rssBytes: number; readonly serverFds: number; readonly processes: number };
  readonly samples: SoakSample[];
  readonly load: {
    readonly requestsPerSecond: number;
    readonly latencyP50Ms: number;
    readonly latencyP99Ms: number;
    readonly responses: number;
    readonly non2xx: number;
    /** Responses whose body was not the expected echo. */
    readonly mismatches: number;
    readonly errors: number;
    readonly timeouts: number;
  };
  readonly churn: ChurnCounts;
  /** After the load stopped: how the server came back to rest. */
  readonly settled: {
    readonly afterMs: number;
    /** False if descriptors or children had not returned to the baseline within SETTLE_MS. */
    readonly atBaseline: boolean;
    readonly serverFds: number;
    readonly processes: number;
    readonly rssBytes: number;
  };
  readonly exit: { readonly code: number | null; readonly signal: string | null };
}

/** How long a server may take to let go of everything once the load stops. */
const SETTLE_MS = 30_000;

const liveChildren = (pid: number) => childPids(pid).filter((child) => stat(child)?.state !== 'Z').length;

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** One request on its own connection, checked; the warm-up before the baseline. */
async function warmUp(lab: LabProcess): Promise<void> {
  const counts: ChurnCounts = { ok: 0, wrong: 0, errors: 0, timeouts: 0 };
  const stop = new AbortController();
  const done = churn(lab.port, 1, stop.signal, counts);
  await until(() => counts.ok + counts.wrong + counts.errors + counts.timeouts > 0, 15_000);
  stop.abort();
  await done;
  if (counts.ok === 0) throw new Error(`${lab.id}: the warm-up request failed (${JSON.stringify(counts)})`);
}

/** Waits until the fd count has held still for 500 ms with no child left, and returns it. */
async function atRest(pid: number): Promise<number> {
  let last = -1;
  let since = performance.now();
  await until(() => {
    const fds = openFds(pid);
    if (fds !== last || liveChildren(pid) > 0) {
      last = fds;
      since = performance.now();
      return false;
    }
    return performance.now() - since >= 500;
  }, SETTLE_MS);
  return last;
}

export async function soakLab(id: string, config: SoakConfig, progress: (line: string) => void): Promise<LabSoak> {
  const lab = await startLab(id, ['--quiet', '--protocol', 'http']);
  try {
    await warmUp(lab);
    const baselineFds = await atRest(lab.pid);
    const baseline = { rssBytes: treeUsage(lab.pid).rssBytes, serverFds: baselineFds, processes: 1 };

    const churnCounts: ChurnCounts = { ok: 0, wrong: 0, errors: 0, timeouts: 0 };
    let responses = 0;
    const sampler = soakSampler(lab.pid, config.sampleMs, {
      responses: () => responses,
      churnCycles: () => churnCounts.ok + churnCounts.wrong + churnCounts.errors + churnCounts.timeouts,
    });
    const stopChurn = new AbortController();
    const churning = churn(lab.port, config.churners, stopChurn.signal, churnCounts);
    const ticker = setInterval(() => {
      const last = sampler.samples.at(-1)!;
      progress(`${id}: ${Math.round(last.tMs / 1000)} s, RSS ${(last.rssBytes / 2 ** 20).toFixed(0)} MiB, ${last.serverFds} fds, ${last.processes} processes`);
    }, 10_000);
    const result = await new Promise<autocannon.Result>((resolve, reject) => {
      const instance = autocannon(
        {
          url: `http://127.0.0.1:${lab.port}/soak`,
          connections: config.connections,
          duration: config.seconds,
          // The echo server answers a request without a body with its target: check every body.
          expectBody: '/soak',
        },
        (error, done) => (error ? reject(error) : resolve(done)),
      );
      instance.on('response', () => responses++);
    });
    stopChurn.abort();
    await churning;
    clearInterval(ticker);
    sampler.stop();

    const settleStart = performance.now();
    const atBaseline = await until(() => openFds(lab.pid) === baselineFds && liveChildren(lab.pid) === 0, SETTLE_MS);
    const tree = treeUsage(lab.pid);
    const settled = {
      afterMs: Math.round(performance.now() - settleStart),
      atBaseline,
      serverFds: openFds(lab.pid),
      processes: tree.processes,
      rssBytes: tree.rssBytes,
    };
    const exit = await lab.stop('SIGTERM', 15_000);
    return {
      lab: id,
      baseline,
      samples: sampler.samples,
      load: {
        requestsPerSecond: result.requests.average,
        latencyP50Ms: result.latency.p50,
        latencyP99Ms: result.latency.p99,
        responses,
        non2xx: result.non2xx,
        mismatches: result.mismatches,
        errors: result.errors,
        timeouts: result.timeouts,
      },
      churn: churnCounts,
      settled,
      exit: { code: exit.code, signal: exit.signal },
    };
  } finally {
    await lab.stop('SIGKILL', 5000);
  }
}
