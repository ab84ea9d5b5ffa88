/**
 * A checking client for the experiments that drive a workload and check every answer (make harden,
 * make syscalls, make balance): one connection that collects what it receives and waits for a length, a
 * pattern or the end, and the byte pattern their messages carry.
 */

import net from 'node:net';

/** `size` bytes that differ with `seed`, so an echo of the wrong message shows. */
export const pattern = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff));

export class Peer {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  ended = false;
  /** What ended the connection when it failed (a reset, a refusal), rather than closed. */
  error: Error | undefined;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.#wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake?.();
    });
    socket.on('error', (error) => {
      this.error = error;
      this.ended = true;
      this.#wake?.();
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => {
        socket.off('error', reject);
        resolve(new Peer(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Resolves once `done` holds for what was received, or rejects after `timeoutMs` (a generous bound). */
  until(done: (received: Buffer) => boolean, timeoutMs = 20_000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (had ${JSON.stringify(this.received.toString('latin1').slice(-80))})`)), timeoutMs);
      const check = () => {
        if (done(this.received) || this.ended) {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve(this.received);
        }
      };
      this.#wake = check;
      check();
    });
  }

  take(): Buffer {
    const all = this.received;
    this.received = Buffer.alloc(0);
    return all;
  }

  end(): Promise<Buffer> {
    this.socket.end();
    return this.until(() => false).finally(() => this.socket.destroy());
  }
}
