/**
 * Small TCP servers that the load-generator tests write themselves: correct ones, and ones that
 * corrupt, drop or add a byte, so a load generator's checks can be shown to catch each fault.
 */

import net from 'node:net';

const servers = new Set<{ close(): Promise<void> }>();

/**
 * Starts a TCP server on a free port whose every connection is handed to `serve` with its index
 * (order of accept). `closeFakeServers` destroys every connection it accepted.
 */
export async function testServer(serve: (socket: net.Socket, index: number) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    serve(socket, accepted++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.add({
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  });
  return (server.address() as net.AddressInfo).port;
}

/** For afterEach: closes every server `testServer` started, and their connections. */
export async function closeFakeServers(): Promise<void> {
  await Promise.all([...servers].map((s) => s.close()));
  servers.clear();
}

/** Calls `onMessage` with each whole message of `size` bytes a connection receives. */
export function framed(socket: net.Socket, size: number, onMessage: (message: Buffer, seq: number) => void): void {
  let pending = Buffer.alloc(0);
  let seq = 0;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= size) {
      onMessage(pending.subarray(0, size), seq++);
      pending = pending.subarray(size);
    }
  });
}
