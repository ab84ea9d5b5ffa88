/**
 * Scenario 1, raw echo in a closed loop: C connections × message sizes, each connection sending
 * its next message only once the last one came back whole and checked. The load generator is the
 * C client (c-load.ts): without a C compiler the rows say why instead of measuring the client.
 */

import { echoEstimate } from '../estimate.js';
import { runCellsOnOneServer, type Scenario } from '../run.js';
import type { Metrics } from '../results.js';
import { cannotMeasure, cClientUnavailable, cClientWindows } from './c-load.js';
import { oneCoreVariants } from './variants.js';

export const echoScenario: Scenario = {
  id: 'echo',
  title: 'Raw echo, closed loop',
  protocol: 'echo',
  // The smallest message at every connection count (the loop's cost per wake-up); larger
  // messages only at the most connections, where copying starts to count: each further cell costs
  // every server about 10 s of a full run.
  cells: (settings) => {
    const smallest = Math.min(...settings.sizes);
    const most = Math.max(...settings.connections);
    return settings.sizes.flatMap((messageBytes) =>
      settings.connections
        .filter((connections) => messageBytes === smallest || connections === most)
        .map((connections) => ({
          key: `c${connections}-b${messageBytes}`,
          title: `${connections} conn × ${messageBytes} B`,
          params: { connections, messageBytes },
        })),
    );
  },
  estimate: echoEstimate,
  leaveOut: oneCoreVariants,
  run: async (target, cells, context) => {
    const why = cClientUnavailable();
    if (why) return cannotMeasure(target, cells, why);
    return runCellsOnOneServer(
      echoScenario,
      target,
      cells,
      context,
      { protocol: 'echo', workUs: 0, maxConns: Math.max(1000, 2 * Math.max(...cells.map((c) => c.params.connections!))) },
      async (server, cell, repeats, onRepeat) => {
        // The warm-up lasts until every connection has been answered once (c-load.ts), so a
        // forking server's children are all up before the window opens.
        const windows = await cClientWindows(
          server,
          { connections: cell.params.connections!, size: cell.params.messageBytes!, warmupS: context.settings.warmup, queues: target.startCost?.queues === true, settleBetweenRuns: true },
          context,
          repeats,
          onRepeat,
        );
        return windows.map(({ result, metrics, notes }) => ({
          metrics: { ...metrics, shortReads: result.shortReads, neverAnswered: result.neverAnswered } satisfies Metrics<'echo'>,
          notes,
        }));
      },
    );
  },
};
