/**
 * What lab 06 prints that this experiment reads: the shutdown summary (one line per worker) and
 * the per-connection lines, each naming its worker.
 */

/** `worker K: C connections, R round trips`, one per worker, worker 0 first. */
export function workerSummary(stdout: string): { connections: number[]; roundTrips: number[] } {
  const rows = [...stdout.matchAll(/\] worker (\d+): (\d+) connections?, (\d+) round trips?$/gm)].map(([, worker, connections, roundTrips]) => ({
    worker: Number(worker),
    connections: Number(connections),
    roundTrips: Number(roundTrips),
  }));
  rows.sort((a, b) => a.worker - b.worker);
  return { connections: rows.map((r) => r.connections), roundTrips: rows.map((r) => r.roundTrips) };
}

/** The worker whose log line says the client on local port `port` connected, or null. */
export function workerOf(stdout: string, port: number): number | null {
  const match = new RegExp(`worker (\\d+)\\] client 127\\.0\\.0\\.1:${port} connected$`, 'm').exec(stdout);
  return match ? Number(match[1]) : null;
}
