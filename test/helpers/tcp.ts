/** Plain TCP client helpers for tests: connect, send, read exact byte counts, with timeouts. */

import net from 'node:net';

const IO_TIMEOUT_MS = 20_000;

export interface Client {
  readonly socket: net.Socket;
  /** Every byte received so far. */
  received(): Buffer;
  /** Resolves once at least `n` bytes have arrived in total. */
  waitForBytes(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves on the server's FIN (or close) with everything received. */
  waitForEnd(timeoutMs?: number): Promise<Buffer>;
  /** Resolves when the socket is fully closed. */
  readonly closed: Promise<void>;
}

const openClients = new Set<net.Socket>();

export function connect(port: number, host = '127.0.0.1'): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, allowHalfOpen: true });
    openClients.add(socket);
    const chunks: Buffer[] = [];
    let total = 0;
    let ended = false;
    const waiters = new Set<() => void>();
    const notify = () => waiters.forEach((w) => w());
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      notify();
    });
    socket.on('end', () => {
      ended = true;
      notify();
    });
    const closed = new Promise<void>((r) =>
      socket.on('close', () => {
        ended = true;
        openClients.delete(socket);
        notify();
        r();
      }),
    );
    socket.on('error', () => {});
    const received = () => Buffer.concat(chunks, total);
    const waitUntil = (done: () => boolean, what: string, timeoutMs: number) =>
      new Promise<Buffer>((res, rej) => {
        const check = () => {
          if (!done()) return;
          waiters.delete(check);
          clearTimeout(timer);
          res(received());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          rej(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; have ${total} bytes${ended ? ', connection ended' : ''}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    socket.once('connect', () =>
      resolve({
        socket,
        received,
        closed,
        waitForBytes: (n, t = IO_TIMEOUT_MS) => waitUntil(() => total >= n || ended, `${n} bytes`, t).then((b) => {
          if (b.length < n) throw new Error(`connection ended after ${b.length} of ${n} bytes`);
          return b;
        }),
        waitForEnd: (t = IO_TIMEOUT_MS) => waitUntil(() => ended, 'the end of the stream', t),
      }),
    );
    socket.once('error', reject);
  });
}

/** Destroys every client a test opened, for afterEach. */
export function closeAllClients(): void {
  for (const socket of openClients) socket.destroy();
  openClients.clear();
}
