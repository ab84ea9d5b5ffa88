/**
 * Scenario 2, idle connections beside busy ones (the C10K lesson): hold N idle connections while
 * a few busy ones ping-pong 64 B, and weigh what each busy round trip costs the server. A loop
 * that asks the kernel about every descriptor on every wake-up (poll) pays for the idle ones on
 * each round trip; one that keeps an interest list in the kernel (epoll) should not.
 *
 * For each server (one fresh server for all levels, in increasing order):
 *   1. open N idle connections (200 handshakes at a time) and probe each once, so every one has
 *      been accepted and is in the server's descriptor set, not waiting in the accept queue;
 *   2. run the C load generator on the busy connections, one run per repeat, sampling the
 *      server's CPU over its window;
 *   3. close the idle connections and wait until the server is quiet again.
 *
 * The descriptor limit: N idle connections cost N descriptors in the harness and in the server.
 * The harness raises its own open-file limit (prlimit) before the first server starts, and every
 * server it starts inherits it; the report states the limit.
 */

import { execFileSync } from 'node:child_process';
import { holdConnections } from '../../load/hold.js';
import { openFileLimit } from '../../../harness/processes.js';
import { oneEventLoop } from '../../kit/labs.js';
import { C_REFERENCE_ID, type Metrics } from '../results.js';
import { runCellsOnOneServer, type Scenario } from '../run.js';
import type { TargetSpec } from '../targets.js';
import { cannotMeasure, cClientUnavailable, cClientWindows } from './c-load.js';
import { idleVariants } from './variants.js';

/** Busy connections' message size: small, so the loop, not the copy, is the cost. */
const MESSAGE_BYTES = 64;
/** Descriptors a process needs besides its connections (stdio, epoll, pipes, the listener, the busy ones). */
const FD_HEADROOM = 256;
const PROBE_STALL_MS = 2_000;
const PROBE_TIMEOUT_MS = 60_000;
/** Loopback handshakes a second the opener achieves, for the time estimate only. */
const HANDSHAKES_PER_S = 4000;

/** The harness's open-file limit before and after this scenario raised it. */
let fdLimit: { before: number | undefined; after: number | undefined } | undefined;

function raiseFdLimit(needed: number): void {
  if (fdLimit) return;
  const before = openFileLimit('self');
  if (before === undefined || before < needed) {
    try {
      // Soft and hard: the servers started after this inherit both.
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${needed}:${needed}`], { stdio: 'ignore' });
    } catch {
      // Not allowed (no CAP_SYS_RESOURCE above the hard limit): the servers' rows will say their limit.
    }
  }
  fdLimit = { before, after: openFileLimit('self') };
}

/**
 * The servers whose loop this scenario compares: the one-thread event-loop labs (every variant:
 * their multiplexer is the lesson) and the C reference.
 */
function leaveOut(target: TargetSpec): string | undefined {
  const loop = target.kind === 'lab' && target.traits !== undefined && oneEventLoop(target.traits) && !target.multiCore;
  if (loop || target.id === C_REFERENCE_ID) return idleVariants(target);
  return 'this scenario compares one-thread event loops (what one thread pays per wake-up for the descriptors it watches); other models are left out to keep the run short';
}

export const idleScenario: Scenario = {
  id: 'idle',
  title: 'Idle connections beside busy ones (C10K)',
  protocol: 'echo',
  cells: (settings) =>
    [...settings.idle]
      .sort((a, b) => a - b)
      .map((idle) => ({
        key: `i${idle}`,
        title: `${idle.toLocaleString('en-US')} idle + ${settings.idleActive} busy × ${MESSAGE_BYTES} B`,
        params: { idle, connections: settings.idleActive, messageBytes: MESSAGE_BYTES },
      })),
  estimate: (settings, cell) =>
    cell.params.idle! / HANDSHAKES_PER_S + 0.5 + settings.repeats * (settings.warmup + settings.duration + 0.4),
  leaveOut,
  facts: () => ({
    ...(fdLimit?.before === undefined ? {} : { fdLimitBefore: fdLimit.before }),
    ...(fdLimit?.after === undefined ? {} : { fdLimit: fdLimit.after }),
  }),
  run: async (target, cells, context) => {
    const why = cClientUnavailable();
    if (why) return cannotMeasure(target, cells, why);
    const most = Math.max(...cells.map((c) => c.params.idle! + c.params.connections!));
    raiseFdLimit(most + FD_HEADROOM);
    return runCellsOnOneServer(idleScenario, target, cells, context, { protocol: 'echo', workUs: 0, maxConns: most + FD_HEADROOM }, async (server, cell, repeats, onRepeat) => {
      const idle = cell.params.idle!;
      const serverFds = server.pid === undefined ? undefined : openFileLimit(server.pid);
      if (serverFds !== undefined && serverFds < idle + FD_HEADROOM) {
        throw new Error(`the server's open-file limit is ${serverFds}, too few for ${idle} idle connections`);
      }
      const held = await holdConnections({ host: server.host, port: server.port, count: idle }); // step 1
      try {
        if (idle > 0) {
          const probe = await held.probe(PROBE_STALL_MS, PROBE_TIMEOUT_MS);
          if (probe.echoed !== idle) throw new Error(`only ${probe.echoed} of ${idle} idle connections echoed their probe${probe.firstError ? ` (${probe.firstError})` : ''}`);
        }
        const windows = await cClientWindows(server, { connections: cell.params.connections!, size: MESSAGE_BYTES, warmupS: context.settings.warmup }, context, repeats, onRepeat); // step 2
        return windows.map(({ result, metrics, notes }) => ({
          metrics: { idle, ...metrics } satisfies Metrics<'idle'>,
          notes,
        }));
      } finally {
        await held.close(); // step 3 (the runner then waits for the server to settle)
      }
    });
  },
};
