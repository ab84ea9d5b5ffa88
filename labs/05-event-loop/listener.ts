/**
 * The listening socket, made with the system calls themselves: socket, setsockopt, bind, listen,
 * all non-blocking. The same steps as lab 01's (labs/01-serial/server.ts, "Binding"), kept here
 * until they move to one shared home; the model lives in server.ts, not here.
 */

import dns from 'node:dns/promises';
import net from 'node:net';
import { UserError } from '../../shared/errors.js';
import type { ServerOptions } from '../../shared/lab.js';
import { bindError } from '../../shared/server-kit.js';

export type Libc = typeof import('../../shared/libc.js');

/** The int 1 that setsockopt() reads to switch an option on. */
export const ON = new Int32Array([1]);

/**
 * The IPv4 address to bind: the literal itself, or what a name like "localhost" resolves to.
 * Simplification: IPv4 only, to keep the system calls to struct sockaddr_in.
 */
export async function resolveIPv4(options: ServerOptions, labId: string): Promise<string> {
  if (net.isIPv4(options.host)) return options.host;
  if (net.isIPv6(options.host)) {
    throw new UserError(`cannot listen on ${options.host}: lab ${labId} speaks IPv4 only (try --host 127.0.0.1)`);
  }
  try {
    return (await dns.lookup(options.host, { family: 4 })).address;
  } catch (error) {
    throw bindError(error as NodeJS.ErrnoException, options);
  }
}

/** socket, setsockopt, bind, listen: a non-blocking listening socket. Returns it and its port. */
export function openListener(libc: Libc, host: string, options: ServerOptions): { fd: number; port: number } {
  const fd = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.callError('socket', libc.errno());
  const fail = (syscall: string): never => {
    const error = libc.callError(syscall, libc.errno());
    libc.close(fd);
    throw bindError(error, options);
  };
  // As Node does for every TCP server: a restarted lab may bind its port again at once, even
  // while connections of its previous run linger in TIME_WAIT.
  if (libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, ON, 4) < 0) fail('setsockopt');
  if (libc.bind(fd, libc.sockaddrIn(host, options.port), 16) < 0) fail('bind');
  if (libc.listen(fd, options.backlog) < 0) fail('listen');
  // With --port 0 the kernel picked the port; ask it which.
  const bound = new Uint8Array(16);
  if (libc.getsockname(fd, bound, new Uint32Array([16])) < 0) fail('getsockname');
  return { fd, port: (bound[2]! << 8) | bound[3]! };
}
