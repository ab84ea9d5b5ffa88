/**
 * What the checker reads about the learner's server from /proc, beyond sockets and descriptors
 * (harness/): which epoll instance holds a client's socket and with which events, and which
 * children are zombies. The kernel's own view, so no server can claim what it does not do.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { tcpRows } from '../../harness/sockets.js';
import { processes, socketDescriptors } from './server.js';

/** EPOLLET in an epoll registration's event mask (bit 31), as /proc/PID/fdinfo prints it in hex. */
export const EPOLLET = 0x80000000;

/** The server's end of the connection from `clientPort` to `serverPort`: its socket inode; undefined until accepted. */
export function serverSideInode(serverPort: number, clientPort: number): number | undefined {
  const row = tcpRows().find((r) => r.state !== 'LISTEN' && r.localPort === serverPort && r.remotePort === clientPort);
  return row && row.inode !== 0 ? row.inode : undefined;
}

/**
 * How `pid` watches the socket with `inode` through epoll: the event mask of each registration
 * of it found in the process's epoll instances (/proc/PID/fdinfo/EPFD lists `tfd: FD events: HEX`).
 * Empty when no epoll instance of the process holds it.
 */
export function epollRegistrations(pid: number, inode: number): number[] {
  const descriptors = socketDescriptors(pid);
  const fds = new Set([...descriptors].filter(([, socket]) => socket === inode).map(([fd]) => fd));
  const masks: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return masks;
  }
  for (const entry of entries) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${entry}`, 'utf8');
    } catch {
      continue;
    }
    for (const match of text.matchAll(/^tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)/gm)) {
      if (fds.has(Number(match[1]))) masks.push(parseInt(match[2]!, 16));
    }
  }
  return masks;
}

/** The children of `pid` that have exited and not been reaped (state Z). */
export function zombieChildren(pid: number): number[] {
  return processes()
    .filter((p) => p.ppid === pid && p.state === 'Z')
    .map((p) => p.pid);
}
