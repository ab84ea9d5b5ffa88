/**
 * HTTP connection churn for the soak: each worker connects, sends one request with
 * `Connection: close`, checks the response byte for byte, and starts over. Every cycle opens and
 * closes a connection on the server (a process-per-connection lab starts and reaps a process), which is what exposes a
 * server that leaks a descriptor, a child or a little memory per connection.
 */

import net from 'node:net';

export interface ChurnCounts {
  /** Cycles whose response was exactly right. */
  ok: number;
  /** Responses that came back different from the expected echo. */
  wrong: number;
  /** Connections refused, reset or closed before a whole response. */
  errors: number;
  /** Cycles abandoned after the cycle timeout. */
  timeouts: number;
}

/** A cycle that takes longer than this is abandoned (a lab that serves one client at a time may keep a churner waiting). */
const CYCLE_TIMEOUT_MS = 10_000;

function expectedResponse(target: string): string {
  return (
    'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
    `Content-Length: ${Buffer.byteLength(target)}\r\nConnection: close\r\n\r\n${target}`
  );
}

/** One cycle: connect, request, read to the server's close, compare. */
function cycle(port: number, target: string): Promise<keyof ChurnCounts> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (outcome: keyof ChurnCounts) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish('timeouts'), CYCLE_TIMEOUT_MS);
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish(Buffer.concat(chunks).toString('latin1') === expectedResponse(target) ? 'ok' : 'wrong'));
    socket.on('error', () => finish('errors'));
  });
}

/** Runs `workers` churn loops against `port` until `signal` aborts; counts every outcome. */
export async function churn(port: number, workers: number, signal: AbortSignal, counts: ChurnCounts): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!signal.aborted) counts[await cycle(port, `/churn/${next++}`)]++;
    }),
  );
}
