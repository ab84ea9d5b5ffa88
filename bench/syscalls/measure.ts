/**
 * Measures one server for the system-call experiment: two runs of the same workload on a fresh
 * server each, one under strace (which calls, how many) and one without (context switches, which
 * strace would inflate: it stops the thread at every call).
 */

import { countContextSwitches, countSystemCalls, type CallCount, type ContextSwitches } from './trace.js';
import { closeAll, openConnections, runChurn, runRoundTrips, type Workload } from './workload.js';

/** The counts of one phase of the workload, for one server. */
export interface PhaseCounts {
  /** What the phase divides by: round trips (round-trip phase) or connections (connection phase). */
  readonly units: number;
  readonly calls: Record<string, CallCount>;
  readonly contextSwitches: ContextSwitches;
}

export interface ServerCounts {
  /** Connections the round-trip phase used (1 for a server that serves one client at a time). */
  readonly connections: number;
  readonly roundTrip: PhaseCounts;
  readonly connection: PhaseCounts;
}

/** A started server: a lab (harness/launch.ts) or a reference (bench/servers/targets.ts). */
interface Server {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<unknown>;
}

/** Starts a fresh server for each run; the caller's function knows how (a lab, the C reference). */
export type StartServer = () => Promise<Server>;

async function phaseRoundTrips(server: Server, workload: Workload, traced: boolean) {
  const connections = await openConnections(server.port, server.host, workload);
  try {
    const run = () => runRoundTrips(connections, workload);
    return traced ? { calls: await countSystemCalls(server.pid, run) } : { switches: await countContextSwitches(server.pid, run) };
  } finally {
    await closeAll(connections);
  }
}

async function phaseChurn(server: Server, workload: Workload, traced: boolean) {
  const run = () => runChurn(server.port, server.host, workload);
  return traced ? { calls: await countSystemCalls(server.pid, run) } : { switches: await countContextSwitches(server.pid, run) };
}

export async function measureServer(start: StartServer, workload: Workload, progress: (what: string) => void): Promise<ServerCounts> {
  const stopAfter = async <T>(run: (server: Server) => Promise<T>): Promise<T> => {
    const server = await start();
    try {
      return await run(server);
    } finally {
      await server.stop();
    }
  };
  progress('round trips under strace');
  const tracedRoundTrips = await stopAfter((s) => phaseRoundTrips(s, workload, true));
  progress('connections under strace');
  const tracedChurn = await stopAfter((s) => phaseChurn(s, workload, true));
  progress('round trips, context switches');
  const switchesRoundTrips = await stopAfter((s) => phaseRoundTrips(s, workload, false));
  progress('connections, context switches');
  const switchesChurn = await stopAfter((s) => phaseChurn(s, workload, false));
  return {
    connections: workload.connections,
    roundTrip: {
      units: workload.connections * workload.roundTrips,
      calls: tracedRoundTrips.calls ?? {},
      contextSwitches: switchesRoundTrips.switches ?? { voluntary: 0, involuntary: 0 },
    },
    connection: {
      units: workload.churn,
      calls: tracedChurn.calls ?? {},
      contextSwitches: switchesChurn.switches ?? { voluntary: 0, involuntary: 0 },
    },
  };
}
