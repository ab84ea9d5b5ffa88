/**
 * Scenario 5, capacity: hold N idle connections, confirm each still echoes, and weigh the
 * server's whole process tree.
 *
 * Levels run in increasing order, each repeat on a fresh server (memory per connection must
 * start from a clean process):
 *   1. Before starting, rule a level out only on evidence from this run: the load generator's or
 *      the server's open-file limit below N, a smaller level this server could not hold, or a
 *      smaller level's measured memory per connection times N above 80% of the memory available.
 *      Each becomes a row that says so; nothing is skipped silently.
 *   2. Start the server; weigh it idle (the baseline).
 *   3. Open N connections, a few hundred handshakes at a time.
 *   4. Probe: every connection sends 8 bytes and must get them back; then note the accept queue.
 *   5. Weigh the tree again: memory per connection = (held - baseline) / N.
 *   6. Reset every connection and stop the server.
 */

import { holdConnections } from '../../load/hold.js';
import { capacityEstimate } from '../estimate.js';
import { listenQueue } from '../../../harness/sockets.js';
import { memAvailableBytes, openFileLimit, treeMemory } from '../../../harness/processes.js';
import type { CellResult, CellSpec, Metrics, RunResult } from '../results.js';
import { label, withServer, type RunContext, type Scenario } from '../run.js';
import { median } from '../../kit/stats.js';
import type { TargetSpec } from '../targets.js';
import { firstVariant } from './variants.js';

/** Descriptors a process needs besides its connections (stdio, epoll, pipes, the listener). */
const FD_HEADROOM = 64;
/** Share of available memory a level may be predicted to take before it is not attempted. */
const MEMORY_SHARE = 0.8;
/** A probe is over once no echo has arrived for this long (or all have). */
const PROBE_STALL_MS = 2_000;
const PROBE_TIMEOUT_MS = 60_000;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const capacityScenario: Scenario = {
  id: 'capacity',
  title: 'Capacity: idle connections held',
  protocol: 'echo',
  cells: (settings) =>
    [...settings.capacity]
      .sort((a, b) => a - b)
      .map((connections) => ({ key: `n${connections}`, title: `${connections.toLocaleString('en-US')} connections`, params: { connections } })),
  leaveOut: firstVariant,
  estimate: (settings, cell, target) => capacityEstimate(settings, cell, target, PROBE_STALL_MS),
  facts: () => {
    const fds = openFileLimit('self');
    const memory = memAvailableBytes();
    return {
      ...(fds === undefined ? {} : { openFileLimit: fds }),
      ...(memory === undefined ? {} : { memAvailableBytes: memory }),
    };
  },
  run: async (target, cells, context) => {
    const results: CellResult[] = [];
    for (const cell of cells) results.push(await runLevel(target, cell, results, context));
    return results;
  },
};

async function runLevel(target: TargetSpec, cell: CellSpec, earlier: CellResult[], context: RunContext): Promise<CellResult> {
  const n = cell.params.connections!;
  const base = { target: target.id, cell: cell.key };
  const ruledOut = ruleOut(n, earlier, target.kind !== 'remote');
  if (ruledOut) return { ...base, ...ruledOut, runs: [] };

  const runs: RunResult[] = [];
  const { settings, progress } = context;
  for (let r = 1; r <= settings.repeats; r++) {
    progress.step(label(capacityScenario, target, cell, r, settings.repeats), capacityScenario.estimate(settings, cell, target) / settings.repeats);
    let run: RunResult | { cannot: string };
    try {
      run = await withServer(target, { protocol: 'echo', workUs: 0, maxConns: n + FD_HEADROOM }, context, false, async (server) => {
        // Step 1, the server's side of the fd check: its limit is only known once it runs.
        const serverFds = server.pid === undefined ? undefined : openFileLimit(server.pid);
        if (serverFds !== undefined && serverFds < n + FD_HEADROOM) {
          return { cannot: `the server's open-file limit (ulimit -n) is ${serverFds}, too few for ${n} connections` };
        }
        const idle = server.pid === undefined ? undefined : treeMemory(server.pid); // step 2
        const held = await holdConnections({ host: server.host, port: server.port, count: n }); // step 3
        try {
          const probe = await held.probe(PROBE_STALL_MS, PROBE_TIMEOUT_MS); // step 4
          // After the probe, not right after opening: by then any server that accepts at all has
          // had time to, so what is still queued is what the server is not taking.
          const queued = listenQueue(server.port)?.acceptQueueDepth ?? null;
          const after = server.pid === undefined ? undefined : treeMemory(server.pid); // step 5
          const memory = (m: typeof after) => (m ? (m.pssBytes ?? m.rssBytes) : null);
          const grown = idle && after ? memory(after)! - memory(idle)! : null;
          const notes: string[] = [];
          if (held.firstError) notes.push(held.firstError);
          if (probe.firstError) notes.push(probe.firstError);
          return {
            metrics: {
              connected: held.connected,
              echoed: probe.echoed,
              probeFailed: probe.failed,
              inAcceptQueue: queued,
              pssBytes: after?.pssBytes ?? null,
              rssBytes: after?.rssBytes ?? null,
              bytesPerConnection: grown === null ? null : grown / n,
              processes: after?.processes ?? null,
              serverFds: after?.fds ?? null,
              idleBytes: idle ? memory(idle) : null,
              openMs: held.openMs,
              probeMs: probe.probeMs,
            } satisfies Metrics<'capacity'>,
            notes,
          };
        } finally {
          await held.close(); // step 6
        }
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      progress.note(`capacity · ${target.id} · ${n}: ${reason}`);
      return { ...base, status: 'failed', reason, runs };
    }
    if ('cannot' in run) return { ...base, status: 'cannot', reason: run.cannot, runs };
    runs.push(run);
    // A level not held is not held again: one run shows it, and repeating costs minutes.
    if (run.metrics.echoed !== n) break;
  }
  const last = runs[runs.length - 1]!.metrics;
  if (runs.every((r) => r.metrics.echoed === n)) return { ...base, status: 'ok', runs };
  return { ...base, status: 'cannot', reason: notHeldReason(n, last, target), runs };
}

/** Step 1, from what this run has already seen. */
function ruleOut(n: number, earlier: CellResult[], local: boolean): Pick<CellResult, 'status' | 'reason'> | undefined {
  const ownFds = openFileLimit('self');
  if (ownFds !== undefined && ownFds < n + FD_HEADROOM) {
    return { status: 'cannot', reason: `the load generator's open-file limit (ulimit -n) is ${ownFds}, too few for ${n} connections` };
  }
  const failed = earlier.find((c) => c.status !== 'ok');
  if (failed) {
    return { status: 'not-attempted', reason: `not attempted: the smaller level ${failed.cell.slice(1)} was not held` };
  }
  const measured = earlier.filter((c) => c.runs.length > 0).at(-1);
  const perConnection = measured ? median(measured.runs.map((r) => r.metrics.bytesPerConnection ?? 0)) : 0;
  const available = memAvailableBytes();
  if (local && measured && available !== undefined && perConnection * n > MEMORY_SHARE * available) {
    const at = measured.cell.slice(1);
    return {
      status: 'not-attempted',
      reason:
        `not attempted: ${(perConnection / MiB).toFixed(1)} MiB per connection (measured at ${at}) × ${n} = ` +
        `${((perConnection * n) / GiB).toFixed(1)} GiB, over ${MEMORY_SHARE * 100}% of the ${(available / GiB).toFixed(1)} GiB available`,
    };
  }
  return undefined;
}

function notHeldReason(n: number, metrics: RunResult['metrics'], target: TargetSpec): string {
  const parts = [`${metrics.echoed} of ${n} echoed`];
  if (metrics.connected !== n) parts.push(`${n - (metrics.connected ?? 0)} could not connect`);
  if (metrics.probeFailed) parts.push(`${metrics.probeFailed} were closed or reset by the server`);
  if (metrics.inAcceptQueue) parts.push(`${metrics.inAcceptQueue} were still waiting in the accept queue`);
  return `${parts.join('; ')}${target.limit ? ` (${target.limit})` : ''}`;
}

