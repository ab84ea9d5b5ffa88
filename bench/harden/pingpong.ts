/**
 * A small closed-loop echo load for make harden: N connections, each sending 64 bytes and waiting
 * for all of them back before the next. Enough to keep a lab busy (the probe table) and to count
 * round trips for perf stat; the benchmark's C load generator is for throughput, not needed here.
 */

import net from 'node:net';

const MESSAGE = Buffer.alloc(64, 0x61);

export class EchoLoop {
  readonly #sockets: net.Socket[];
  #running = true;
  #done: (() => void) | undefined;
  #target = Number.POSITIVE_INFINITY;
  roundTrips = 0;

  private constructor(sockets: net.Socket[]) {
    this.#sockets = sockets;
    for (const socket of sockets) {
      let pending = 0;
      socket.on('data', (chunk: Buffer) => {
        pending -= chunk.length;
        if (pending > 0) return;
        this.roundTrips++;
        if (this.roundTrips >= this.#target) this.#done?.();
        if (this.#running) {
          pending = MESSAGE.length;
          socket.write(MESSAGE);
        }
      });
      socket.on('error', () => {});
      // The first message; the serial lab answers only the first connection until it leaves.
      pending = MESSAGE.length;
      socket.write(MESSAGE);
    }
  }

  /** Opens `connections` connections to `port` on 127.0.0.1 and starts their loops. */
  static async start(port: number, connections: number, host = '127.0.0.1'): Promise<EchoLoop> {
    const sockets = await Promise.all(
      Array.from({ length: connections }, () => new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect({ port, host }, () => resolve(socket.setNoDelay(true)));
        socket.once('error', reject);
      })),
    );
    return new EchoLoop(sockets);
  }

  get localPorts(): number[] {
    return this.#sockets.map((s) => s.localPort!);
  }

  /** Resolves once `total` round trips were made in all (from the start), within `timeoutMs`. */
  until(total: number, timeoutMs: number): Promise<void> {
    this.#target = total;
    if (this.roundTrips >= total) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.roundTrips} of ${total} round trips within ${timeoutMs} ms`)), timeoutMs);
      this.#done = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends nothing more once the message in flight is answered; the connections stay open. */
  pause(): void {
    this.#running = false;
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** Polls `ready` every 10 ms until it holds, or rejects after `timeoutMs` naming `what`. */
export async function until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
