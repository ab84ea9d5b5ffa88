/**
 * A listening socket made with the system calls themselves (socket, setsockopt, bind, listen),
 * non-blocking, for the labs that accept through koffi instead of `net.Server` (labs 01 and 05)
 * or that need an option `net` does not offer (lab 06's SO_REUSEPORT). One copy of the steps, so
 * every lab binds the same way and reports a port in use with the same one line.
 *
 * Simplification: IPv4 only, to keep the system calls to struct sockaddr_in.
 */

import dns from 'node:dns/promises';
import net from 'node:net';
import { UserError } from './errors.js';
import type { ServerOptions } from './lab.js';
import { bindError } from './server-kit.js';

export type Libc = typeof import('./libc.js');

/** The int 1 that setsockopt() reads to switch an option on. */
export const ON = new Int32Array([1]);

/** The IPv4 address to bind: the literal itself, or what a name like "localhost" resolves to. */
export async function resolveIPv4(options: Pick<ServerOptions, 'host' | 'port' | 'backlog'>, labName: string): Promise<string> {
  if (net.isIPv4(options.host)) return options.host;
  if (net.isIPv6(options.host)) {
    throw new UserError(`cannot listen on ${options.host}: ${labName} speaks IPv4 only (try --host 127.0.0.1)`);
  }
  try {
    return (await dns.lookup(options.host, { family: 4 })).address;
  } catch (error) {
    throw bindError(error as NodeJS.ErrnoException, options);
  }
}

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly backlog: number;
  /** SO_REUSEPORT: several sockets share the port, each with its own accept queue (lab 06). */
  readonly reusePort?: boolean;
  /** False: bind only, to claim the port (and learn it, for port 0) without listening. */
  readonly listen?: boolean;
  /**
   * A blocking socket: accept() sleeps until a client comes (lab 08's threads block in it, as a C
   * server's do). Every other lab's is non-blocking, so every wait is one it chose.
   */
  readonly blocking?: boolean;
}

/** socket, setsockopt, bind, listen: a listening socket, non-blocking unless asked. Returns it and its port. */
export function openListener(libc: Libc, options: ListenerOptions): { fd: number; port: number } {
  const fd = libc.socket(libc.AF_INET, libc.SOCK_STREAM | (options.blocking ? 0 : libc.SOCK_NONBLOCK) | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.callError('socket', libc.errno());
  const fail = (syscall: string): never => {
    const error = libc.callError(syscall, libc.errno());
    libc.close(fd);
    throw bindError(error, options);
  };
  // As Node does for every TCP server: a restarted lab may bind its port again at once, even
  // while connections of its previous run linger in TIME_WAIT.
  if (libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, ON, 4) < 0) fail('setsockopt');
  if (options.reusePort && libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEPORT, ON, 4) < 0) fail('setsockopt');
  if (libc.bind(fd, libc.sockaddrIn(options.host, options.port), 16) < 0) fail('bind');
  if (options.listen !== false && libc.listen(fd, options.backlog) < 0) fail('listen');
  // With --port 0 the kernel picked the port; ask it which.
  const bound = new Uint8Array(16);
  if (libc.getsockname(fd, bound, new Uint32Array([16])) < 0) fail('getsockname');
  return { fd, port: (bound[2]! << 8) | bound[3]! };
}
