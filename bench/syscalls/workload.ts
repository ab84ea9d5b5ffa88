/**
 * The fixed workload the system-call experiment runs against every server: a few connections
 * echoing small messages back and forth (what one round trip costs), then connections that each
 * connect, echo once and close (what one connection costs). Every echo is checked byte for byte:
 * counting the calls of a server that answers wrongly would count nothing worth knowing.
 */

import net from 'node:net';

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

/** An open connection that sends a message and waits for its whole echo. */
class EchoConnection {
  readonly #socket: net.Socket;
  #pending: Buffer[] = [];
  #have = 0;
  #waiter: { need: number; resolve: () => void; reject: (error: Error) => void } | undefined;
  #ended = false;
  #error: Error | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#pending.push(chunk);
      this.#have += chunk.length;
      this.#check();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#check();
    });
    socket.on('error', (error) => {
      this.#error = error;
      this.#check();
    });
  }

  static open(port: number, host: string): Promise<EchoConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        socket.off('error', reject);
        resolve(new EchoConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  #check(): void {
    const waiter = this.#waiter;
    if (!waiter) return;
    if (this.#have >= waiter.need) {
      this.#waiter = undefined;
      waiter.resolve();
    } else if (this.#error || this.#ended) {
      this.#waiter = undefined;
      waiter.reject(this.#error ?? new Error(`the server closed the connection with ${this.#have} of ${waiter.need} echo bytes sent`));
    }
  }

  /** Sends `message` and resolves once exactly its bytes came back. */
  async roundTrip(message: Buffer): Promise<void> {
    this.#socket.write(message);
    await new Promise<void>((resolve, reject) => {
      this.#waiter = { need: message.length, resolve, reject };
      this.#check();
    });
    const echoed = Buffer.concat(this.#pending, this.#have);
    this.#pending = [];
    this.#have = 0;
    if (!echoed.equals(message)) throw new Error('the echo differs from the message sent');
  }

  /** Half-closes and waits for the server's FIN. */
  async close(): Promise<void> {
    if (!this.#ended) {
      this.#socket.end();
      await new Promise<void>((resolve) => {
        if (this.#ended || this.#socket.destroyed) resolve();
        else this.#socket.once('close', () => resolve());
      });
    }
    this.#socket.destroy();
  }
}

function message(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

/** The connections of the round-trip phase, opened and warmed (one echo each) before counting. */
export async function openConnections(port: number, host: string, workload: Workload): Promise<EchoConnection[]> {
  const connections: EchoConnection[] = [];
  for (let i = 0; i < workload.connections; i++) connections.push(await EchoConnection.open(port, host));
  // A serial server serves one at a time, so the warm-up echoes must not wait on each other in turn
  // before the last one is open: all are sent at once and awaited together.
  await Promise.all(connections.map((c, i) => c.roundTrip(message(workload.size, i))));
  return connections;
}

/** Every connection runs its round trips, closed loop, all connections at once. */
export async function runRoundTrips(connections: readonly EchoConnection[], workload: Workload): Promise<void> {
  await Promise.all(
    connections.map(async (connection, i) => {
      const bytes = message(workload.size, i);
      for (let n = 0; n < workload.roundTrips; n++) await connection.roundTrip(bytes);
    }),
  );
}

export async function closeAll(connections: readonly EchoConnection[]): Promise<void> {
  await Promise.all(connections.map((c) => c.close()));
}

/** One connection after another: connect, echo one message, close, wait for the server's FIN. */
export async function runChurn(port: number, host: string, workload: Workload): Promise<void> {
  for (let i = 0; i < workload.churn; i++) {
    const connection = await EchoConnection.open(port, host);
    await connection.roundTrip(message(workload.size, i));
    await connection.close();
  }
}
