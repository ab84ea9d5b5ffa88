/**
 * Has a client that the parent has not read from already left? Lab 02's parent keeps each client
 * paused until its child takes it (not one byte may be read before then), so Node tells it
 * nothing about that socket: no 'data', no 'end', no 'close'. It looks instead, with one
 * non-blocking recv(MSG_PEEK) of one byte, which reads nothing off the socket:
 *
 *   - a byte is waiting: the client is there (it may have sent its FIN after its bytes; its
 *     child still owes it the echo of every one) -- unless the connection has been reset: the
 *     kernel keeps the bytes that came before a reset readable, so the peek finds them, and only
 *     the connection's TCP state (TCP_INFO's tcpi_state, TCP_CLOSE) says nobody will take an
 *     answer. A burst of clients that each sent a few bytes and reset (SO_LINGER 0) cost lab 02 a
 *     child each before this second look (issue 27, finding 7);
 *   - 0: the client sent its FIN and nothing before it. Its echo is empty, so closing the
 *     connection now is the whole answer;
 *   - -1 with EAGAIN: the client is there and has not sent anything yet;
 *   - -1 with anything else (ECONNRESET): the connection is gone.
 *
 * Cheap: one or two system calls through koffi, a few microseconds, against the tens of
 * milliseconds of CPU a child costs to start.
 */

import type { Socket } from 'node:net';

export type ClientLeft = (socket: Socket) => boolean;

/**
 * The check, on Linux; elsewhere a check that never sees a client leave (the lab then starts a
 * child for every client, as it did before it looked). libc.ts is loaded only on Linux: its
 * constants are Linux's.
 */
export async function clientLeftCheck(): Promise<ClientLeft> {
  if (process.platform !== 'linux') return (socket) => socket.destroyed;
  const libc = await import('../../shared/libc.js');
  const byte = new Uint8Array(1);
  return (socket) => {
    if (socket.destroyed) return true;
    const fd = descriptor(socket);
    if (fd === undefined) return false;
    const got = libc.recv(fd, byte, 1, libc.MSG_PEEK | libc.MSG_DONTWAIT);
    if (got > 0) return libc.tcpInfo(fd)?.state === libc.TCP_CLOSE;
    if (got === 0) return true;
    const error = libc.errno();
    return error !== libc.EAGAIN && error !== libc.EINTR;
  };
}

/**
 * The socket's file descriptor. Node does not document it, but a TCP socket's handle carries it
 * on every Unix (`_handle.fd`); where it is missing the check says "still there".
 */
function descriptor(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
