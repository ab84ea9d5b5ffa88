/**
 * Scenario 1, raw echo in a closed loop: C connections × message sizes, each connection sending
 * its next message only once the last one came back whole and checked.
 */

import { runEchoLoad } from '../../load/echo.js';
import { echoEstimate } from '../estimate.js';
import { runCellsOnOneServer, type Scenario } from '../run.js';
import type { Metrics } from '../results.js';
import { latencyMetrics, Samplers, usageMetrics } from './common.js';

export const echoScenario: Scenario = {
  id: 'echo',
  title: 'Raw echo, closed loop',
  protocol: 'echo',
  cells: (settings) =>
    settings.sizes.flatMap((messageBytes) =>
      settings.connections.map((connections) => ({
        key: `c${connections}-b${messageBytes}`,
        title: `${connections} conn × ${messageBytes} B`,
        params: { connections, messageBytes },
      })),
    ),
  estimate: echoEstimate,
  run: (target, cells, context) =>
    runCellsOnOneServer(
      echoScenario,
      target,
      cells,
      context,
      { protocol: 'echo', workUs: 0, maxConns: Math.max(1000, 2 * Math.max(...cells.map((c) => c.params.connections!))) },
      async (server, cell, repeats, onRepeat) => {
        const samplers = new Samplers(server.pid);
        const load = await runEchoLoad({
          host: server.host,
          port: server.port,
          connections: cell.params.connections!,
          messageBytes: cell.params.messageBytes!,
          durationMs: context.settings.duration * 1000,
          windows: repeats,
          warmupMs: context.settings.warmup * 1000,
          warmupMaxMs: 30_000,
          drainTimeoutMs: 1_000,
          onWindowStart: (w) => {
            onRepeat(w);
            samplers.start(w);
          },
          onWindowEnd: (w) => samplers.stop(w),
        });
        return load.windows.map((window, w) => ({
          metrics: {
            roundTripsPerSec: window.roundTripsPerSec,
            ...latencyMetrics(window.latencyUs),
            errors: window.errorCount,
            shortReads: window.shortReads,
            fewest: window.fewest,
            most: window.most,
            neverAnswered: window.neverAnswered,
            ...usageMetrics(samplers.usage(w), window.roundTrips),
          } satisfies Metrics<'echo'>,
          notes: w === 0 && load.firstError ? [`first error: ${load.firstError}`] : [],
        }));
      },
    ),
};
