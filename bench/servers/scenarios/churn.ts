/** Scenario 4, connection churn: connect, one echo, close, again, from several clients at once. */

import { runChurn } from '../../load/churn-client.js';
import { churnEstimate } from '../estimate.js';
import { runCellsOnOneServer, type Scenario } from '../run.js';
import type { Metrics } from '../results.js';
import { latencyMetrics, measuredWindows, Samplers, usageMetrics } from './common.js';
import { firstVariant } from './variants.js';

/** Each cycle echoes one small message: the cost measured is the connection, not the bytes. */
const MESSAGE_BYTES = 64;

export const churnScenario: Scenario = {
  id: 'churn',
  title: 'Connection churn',
  protocol: 'echo',
  cells: (settings) => [
    {
      key: `k${settings.churnClients}`,
      title: `${settings.churnClients} clients, connect + ${MESSAGE_BYTES} B echo + close`,
      params: { clients: settings.churnClients, messageBytes: MESSAGE_BYTES },
    },
  ],
  estimate: churnEstimate,
  leaveOut: firstVariant,
  run: (target, cells, context) =>
    runCellsOnOneServer(churnScenario, target, cells, context, { protocol: 'echo', workUs: 0, maxConns: 1000 }, async (server, cell, repeats, onRepeat) => {
      const samplers = new Samplers(server.pid, 100);
      const windows = await runChurn({
        host: server.host,
        port: server.port,
        clients: cell.params.clients!,
        messageBytes: cell.params.messageBytes!,
        ...measuredWindows(context, repeats, samplers, onRepeat),
      });
      return windows.map((window, w) => ({
        metrics: {
          connectionsPerSec: window.connectionsPerSec,
          ...latencyMetrics(window.firstEchoUs, 'firstEcho'),
          errors: window.errorCount,
          ...usageMetrics(samplers.usage(w), window.cycles),
        } satisfies Metrics<'churn'>,
        notes: window.firstError ? [`first error: ${window.firstError}`] : [],
      }));
    }),
};
