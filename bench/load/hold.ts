/**
 * Capacity: open N connections, hold them idle, then confirm each one still echoes.
 *
 * Opening is throttled to `concurrency` handshakes at a time, so the test measures how many
 * connections a server can hold, not how deep its accept queue is. The probe sends a few bytes
 * on every connection at once and waits until all have come back, or until some have and then
 * none for `stallMs` (a serial server answers one connection and then nothing more; a forking
 * server keeps answering as its children start, so it is not cut off while it makes progress),
 * or until `timeoutMs`.
 * Connections are closed with a reset, which leaves no TIME_WAIT behind to exhaust local ports
 * when ten thousand connections are opened several times over.
 */

import net from 'node:net';
import { Signal } from './signal.js';

export interface HoldOptions {
  readonly host: string;
  readonly port: number;
  readonly count: number;
  readonly concurrency?: number;
  readonly connectTimeoutMs?: number;
}

export interface ProbeResult {
  /** Connections whose probe came back whole and unchanged. */
  readonly echoed: number;
  /** Connections that failed (reset, closed, or echoed something else). */
  readonly failed: number;
  readonly probeMs: number;
  readonly firstError: string | undefined;
}

export interface HeldConnections {
  readonly connected: number;
  readonly connectFailures: number;
  readonly firstError: string | undefined;
  readonly openMs: number;
  probe(stallMs: number, timeoutMs: number): Promise<ProbeResult>;
  close(): Promise<void>;
}

export async function holdConnections(options: HoldOptions): Promise<HeldConnections> {
  const concurrency = options.concurrency ?? 200;
  const sockets: net.Socket[] = [];
  const closed: Promise<void>[] = [];
  let connectFailures = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  const opener = async () => {
    while (next < options.count) {
      const result = await openConnection(options, next++);
      if ('error' in result) {
        connectFailures++;
        firstError ??= `connect: ${result.error}`;
        continue;
      }
      sockets.push(result.socket);
      closed.push(result.socket.closed ? Promise.resolve() : new Promise((resolve) => result.socket.once('close', () => resolve())));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, options.count) }, opener));
  const openMs = performance.now() - started;

  return {
    connected: sockets.length,
    connectFailures,
    firstError,
    openMs,
    probe: (stallMs, timeoutMs) => probe(sockets, stallMs, timeoutMs),
    async close() {
      for (const socket of sockets) {
        socket.on('error', () => {}); // a reset we send is not news
        if (!socket.destroyed) socket.resetAndDestroy();
      }
      await Promise.all(closed);
    },
  };
}

async function probe(sockets: net.Socket[], stallMs: number, timeoutMs: number): Promise<ProbeResult> {
  const signal = new Signal();
  const started = performance.now();
  let lastEcho = started;
  let echoed = 0;
  let failed = 0;
  let firstError: string | undefined;
  sockets.forEach((socket, index) => {
    const probe = Buffer.alloc(8);
    probe.writeUInt32BE(index, 0);
    probe.write('echo', 4, 'latin1');
    let received = 0;
    let done = false;
    const finish = (ok: boolean, why?: string) => {
      if (done) return;
      done = true;
      if (ok) {
        echoed++;
        lastEcho = performance.now();
      } else {
        failed++;
        firstError ??= why;
      }
      signal.notify();
    };
    socket.on('data', (chunk: Buffer) => {
      if (received + chunk.length > probe.length || chunk.compare(probe, received, received + chunk.length) !== 0) {
        return finish(false, 'probe: echo differs from the probe sent');
      }
      received += chunk.length;
      if (received === probe.length) finish(true);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(false, `probe: ${error.code ?? error.message}`));
    socket.on('end', () => finish(false, 'probe: server closed the connection'));
    socket.write(probe);
  });
  await signal.until(() => {
    const now = performance.now();
    // The stall rule starts at the first echo: a forking server may take a while to answer at all.
    return echoed + failed === sockets.length || (echoed > 0 && now - lastEcho >= stallMs) || now - started >= timeoutMs;
  }, Math.min(stallMs, 100));
  return { echoed, failed, probeMs: performance.now() - started, firstError };
}

/** Opens one connection, or says why it could not. */
export function openConnection(
  options: { host: string; port: number; connectTimeoutMs?: number },
  index: number,
): Promise<{ index: number; socket: net.Socket } | { index: number; error: string }> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000;
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ index, error: `no connection within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve({ index, socket });
    });
    // Stays attached after the connect, so an error before the caller listens cannot go unheard.
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ index, error: error.code ?? error.message });
    });
  });
}
