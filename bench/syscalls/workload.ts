/**
 * The fixed workload the system-call experiment runs against every server: a few connections
 * echoing small messages back and forth (what one round trip costs), then connections that each
 * connect, echo once and close (what one connection costs). Every echo is checked byte for byte:
 * counting the calls of a server that answers wrongly would count nothing worth knowing.
 */

import { pattern, Peer } from '../load/peer.js';

export interface Workload {
  /** Connections open during the round-trip phase. */
  readonly connections: number;
  /** Round trips per connection in that phase. */
  readonly roundTrips: number;
  /** Bytes per message. */
  readonly size: number;
  /** Connections opened, echoed once and closed in the connection phase, one after another. */
  readonly churn: number;
}

/** Sends `message` and resolves once exactly its bytes came back. */
async function roundTrip(peer: Peer, message: Buffer): Promise<void> {
  peer.socket.write(message);
  await peer.until((received) => received.length >= message.length);
  if (!peer.take().equals(message)) throw new Error('the echo differs from the message sent (or the server closed before it was whole)');
}

async function open(port: number, host: string): Promise<Peer> {
  const peer = await Peer.open(port, host);
  peer.socket.setNoDelay(true);
  return peer;
}

/** The connections of the round-trip phase, opened and warmed (one echo each) before counting. */
export async function openConnections(port: number, host: string, workload: Workload): Promise<Peer[]> {
  const connections: Peer[] = [];
  for (let i = 0; i < workload.connections; i++) connections.push(await open(port, host));
  // A serial server serves one at a time, so the warm-up echoes must not wait on each other in turn
  // before the last one is open: all are sent at once and awaited together.
  await Promise.all(connections.map((c, i) => roundTrip(c, pattern(workload.size, i))));
  return connections;
}

/** Every connection runs its round trips, closed loop, all connections at once. */
export async function runRoundTrips(connections: readonly Peer[], workload: Workload): Promise<void> {
  await Promise.all(
    connections.map(async (connection, i) => {
      const bytes = pattern(workload.size, i);
      for (let n = 0; n < workload.roundTrips; n++) await roundTrip(connection, bytes);
    }),
  );
}

/** Half-closes each connection and waits for the server's FIN. */
export async function closeAll(connections: readonly Peer[]): Promise<void> {
  await Promise.all(connections.map((c) => c.end()));
}

/** One connection after another: connect, echo one message, close, wait for the server's FIN. */
export async function runChurn(port: number, host: string, workload: Workload): Promise<void> {
  for (let i = 0; i < workload.churn; i++) {
    const connection = await open(port, host);
    await roundTrip(connection, pattern(workload.size, i));
    await connection.end();
  }
}
