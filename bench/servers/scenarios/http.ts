/**
 * Scenarios 2 and 3 share this: HTTP/1.1 echo through autocannon. Scenario 2 varies connections
 * and pipelining with no work per request; scenario 3 (CPU-bound) gives every request
 * `--work-us` of CPU work and lets the server use every core.
 */

import { runHttpLoad } from '../../load/http-client.js';
import { httpEstimate } from '../estimate.js';
import type { CellSpec, Metrics, RunResult } from '../results.js';
import { runCellsOnOneServer, type RunContext, type Scenario, type ServerUnderTest } from '../run.js';
import { latencyMetrics, measuredWindows, Samplers, usageMetrics } from './common.js';
import { firstVariant, multiCoreVariants } from './variants.js';

async function measureHttp(
  server: ServerUnderTest,
  cell: CellSpec,
  context: RunContext,
  repeats: number,
  onRepeat: (index: number) => void,
): Promise<RunResult[]> {
  const samplers = new Samplers(server.pid);
  const windows = await runHttpLoad({
    host: server.host,
    port: server.port,
    connections: cell.params.connections!,
    pipelining: cell.params.pipelining!,
    bodyBytes: context.settings.httpBodyBytes,
    ...measuredWindows(context, repeats, samplers, onRepeat),
  });
  return windows.map((window, w) => ({
    metrics: {
      requestsPerSec: window.requestsPerSec,
      ...latencyMetrics(window.latencyUs),
      errors: window.errors,
      timeouts: window.timeouts,
      non2xx: window.non2xx,
      mismatches: window.mismatches,
      fewest: window.fewest,
      most: window.most,
      ...usageMetrics(samplers.usage(w), window.responses),
    } satisfies Metrics<'http' | 'cpu'>,
    notes: [],
  }));
}

const maxConns = (cells: CellSpec[]) => Math.max(1000, 2 * Math.max(...cells.map((c) => c.params.connections!)));

export const httpScenario: Scenario = {
  id: 'http',
  title: 'HTTP echo through autocannon',
  protocol: 'http',
  cells: (settings) =>
    [1, settings.pipelining].flatMap((pipelining) =>
      settings.httpConnections.map((connections) => ({
        key: `c${connections}-p${pipelining}`,
        title: `${connections} conn, ${pipelining === 1 ? 'no pipelining' : `pipelining ${pipelining}`}`,
        params: { connections, pipelining },
      })),
    ),
  estimate: httpEstimate,
  leaveOut: firstVariant,
  run: (target, cells, context) =>
    runCellsOnOneServer(httpScenario, target, cells, context, { protocol: 'http', workUs: 0, maxConns: maxConns(cells) }, (server, cell, repeats, onRepeat) =>
      measureHttp(server, cell, context, repeats, onRepeat),
    ),
};

export const cpuScenario: Scenario = {
  id: 'cpu',
  title: 'CPU-bound HTTP',
  protocol: 'http',
  allCores: true,
  leaveOut: multiCoreVariants,
  cells: (settings) => [
    {
      key: `c${settings.cpuConnections}-w${settings.workUs}`,
      title: `${settings.cpuConnections} conn, ${settings.workUs} µs of work per request`,
      params: { connections: settings.cpuConnections, pipelining: 1, workUs: settings.workUs },
    },
  ],
  estimate: httpEstimate,
  facts: (settings, _cpus, cores) => ({
    cores,
    workUs: settings.workUs,
    // One core doing nothing but the work completes 1e6 / workUs requests a second.
    oneCoreCeiling: 1e6 / settings.workUs,
    idealRatio: Math.min(cores, settings.cpuConnections),
  }),
  run: (target, cells, context) =>
    runCellsOnOneServer(
      cpuScenario,
      target,
      cells,
      context,
      { protocol: 'http', workUs: context.settings.workUs, maxConns: maxConns(cells) },
      (server, cell, repeats, onRepeat) => measureHttp(server, cell, context, repeats, onRepeat),
    ),
};
