/**
 * Step 1, spread: how a policy divides arriving connections among the loops. Each connection
 * connects, echoes one line and then stays open until every connection of the run has echoed,
 * so what a loop is left holding is what it would carry for the rest of a long-lived connection
 * (a WebSocket, a keep-alive client): the case where an uneven split costs something. Then all
 * close, the lab gets SIGTERM and its summary says how many each worker served.
 */

import net from 'node:net';
import { startLab } from '../../harness/launch.js';
import { Peer } from '../load/peer.js';
import { workerSummary } from './log-lines.js';
import type { Arrival, SpreadRun } from './results.js';

/** Far above any run here: the cap must never be what decides where a connection goes. */
const MAX_CONNS = 4000;
/** A burst of 1,000 SYNs must not overflow the accept queue (the kernel caps it at somaxconn). */
const BACKLOG = 2048;
/** Bound on one connection's echo: far beyond loopback's milliseconds, even when busy. */
const ECHO_TIMEOUT_MS = 20_000;

/** Connects, echoes one line, and resolves with the still-open socket; rejects on any failure. */
async function echoOnce(host: string, port: number, line: string): Promise<net.Socket> {
  const peer = await Peer.open(port, host);
  try {
    peer.socket.write(line);
    const echoed = (await peer.until((received) => received.length >= line.length, ECHO_TIMEOUT_MS)).toString('latin1');
    if (echoed !== line) throw new Error(`wrong echo: ${JSON.stringify(echoed)}`);
    return peer.socket;
  } catch (error) {
    peer.socket.destroy();
    throw error;
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One run: a fresh lab 06 with `workers` loops and the policy's flags, and `arrival`'s connections. */
export async function measureSpread(labId: string, policy: { name: string; args: readonly string[] }, workers: number, arrival: Arrival): Promise<SpreadRun> {
  const lab = await startLab(labId, ['--quiet', '--workers', String(workers), ...policy.args, '--max-conns', String(MAX_CONNS), '--backlog', String(BACKLOG)]);
  const sockets: net.Socket[] = [];
  let failed = 0;
  const start = performance.now();
  try {
    // The arrival schedule is the experiment's input: connection i starts at i × (overMs / n).
    await Promise.all(
      Array.from({ length: arrival.connections }, async (_, i) => {
        if (arrival.overMs > 0) await delay((i * arrival.overMs) / arrival.connections);
        try {
          sockets.push(await echoOnce(lab.host, lab.port, `spread ${i}\n`));
        } catch {
          failed++;
        }
      }),
    );
  } finally {
    for (const socket of sockets) socket.destroy();
  }
  const elapsedMs = performance.now() - start;
  const exit = await lab.stop('SIGTERM');
  if (exit.code !== 0) throw new Error(`lab ${labId} exited with ${exit.code ?? exit.signal} after the spread run:\n${lab.output().stderr}`);
  const { connections } = workerSummary(lab.output().stdout);
  if (connections.length !== workers) throw new Error(`lab ${labId} printed ${connections.length} worker summary lines, not ${workers}`);
  return { policy: policy.name, workers, arrival, perWorker: connections, failed, elapsedMs: Math.round(elapsedMs) };
}
