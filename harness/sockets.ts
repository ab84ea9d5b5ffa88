/**
 * Sockets as the kernel shows them in /proc (Linux only): the TCP tables (/proc/net/tcp, tcp6),
 * the accept queue of a listening socket, one connection's queues, and the listen-overflow
 * counters of /proc/net/netstat. Tests, the benchmark and every experiment observe sockets through
 * this one module, so they agree on what they see. Processes are in processes.ts.
 */

import { readFileSync } from 'node:fs';

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING',
};

/** One row of /proc/net/tcp or tcp6: one socket, as the kernel sees it. */
export interface TcpRow {
  /** Local address as the kernel prints it: hex, IPv4 as a little-endian 32-bit word. */
  readonly localAddress: string;
  readonly localPort: number;
  /** The peer's address, hex as above (0 for a listening socket). */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Kernel state name, e.g. LISTEN, ESTABLISHED, SYN_SENT. */
  readonly state: string;
  /** Bytes written and not yet acknowledged by the peer (for LISTEN: 0). */
  readonly txQueue: number;
  /** Bytes received and not yet read (for LISTEN: the accept-queue length). */
  readonly rxQueue: number;
  /** Inode of the socket file, 0 when no process holds it. */
  readonly inode: number;
}

/** Reads one table, both by default. Every /proc/net/tcp reader in the project goes through here. */
export function tcpRows(families: ReadonlyArray<'tcp' | 'tcp6'> = ['tcp', 'tcp6']): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const family of families) {
    let text: string;
    try {
      text = readFileSync(`/proc/net/${family}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, state, queues] = [fields[1], fields[2], fields[3], fields[4]];
      if (!local || !remote || !state || !queues) continue;
      const [tx, rx] = queues.split(':');
      rows.push({
        localAddress: local.slice(0, local.lastIndexOf(':')),
        localPort: parseInt(local.slice(local.lastIndexOf(':') + 1), 16),
        remoteAddress: remote.slice(0, remote.lastIndexOf(':')),
        remotePort: parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16),
        state: TCP_STATES[state] ?? state,
        txQueue: parseInt(tx ?? '0', 16),
        rxQueue: parseInt(rx ?? '0', 16),
        inode: Number(fields[9] ?? 0),
      });
    }
  }
  return rows;
}

/**
 * An address as /proc/net/tcp prints it, readable: "0100007F" (IPv4, one little-endian word) →
 * "127.0.0.1"; 32 hex digits (IPv6, four such words) → "[::1]", or "::ffff:a.b.c.d" for an IPv4
 * client of a dual-stack socket.
 */
export function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytesOf = (word: string) => (word.match(/../g) ?? []).map((b) => parseInt(b, 16)).reverse();
  if (words.length === 1) return bytesOf(words[0]!).join('.');
  const all = words.flatMap(bytesOf);
  if (all.slice(0, 10).every((b) => b === 0) && all[10] === 0xff && all[11] === 0xff) return `::ffff:${all.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((all[i]! << 8) | all[i + 1]!).toString(16));
  return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]`;
}

const listening = (port: number) => tcpRows().find((row) => row.state === 'LISTEN' && row.localPort === port);

export interface ListenQueue {
  /** Connections that finished the handshake and wait for accept() (Recv-Q in `ss -ltn`). */
  readonly acceptQueueDepth: number;
}

/**
 * The accept queue of the socket listening on `port`, or undefined if none listens. For a LISTEN
 * socket the kernel reports the current accept-queue length as rx_queue in /proc/net/tcp (what
 * `ss -ltn` prints as Recv-Q). The backlog itself (ss's Send-Q) is not in /proc: only the
 * sock_diag netlink interface that `ss` uses reports it.
 */
export function listenQueue(port: number): ListenQueue | undefined {
  const row = listening(port);
  return row && { acceptQueueDepth: row.rxQueue };
}

/**
 * The local address of the socket listening on `port`, as a dotted quad (IPv4) or the raw hex
 * (IPv6), read from the kernel rather than from the server's own log line.
 */
export function listeningAddress(port: number): string | undefined {
  const address = listening(port)?.localAddress;
  if (address === undefined || address.length !== 8) return address;
  return [6, 4, 2, 0].map((i) => parseInt(address.slice(i, i + 2), 16)).join('.');
}

export interface ConnectionQueues {
  /** Bytes the server wrote that the client has not acknowledged (its receive window is full). */
  readonly serverUnsent: number;
  /** Bytes the client sent that the server has not read: stays high when the server stopped reading. */
  readonly serverUnread: number;
}

/**
 * The kernel queues of the server's end of one connection, found by the server port and the
 * client's port. Whoever holds the socket (the server or one of its children), the kernel keeps
 * the queues.
 */
export function connectionQueues(serverPort: number, clientPort: number): ConnectionQueues | undefined {
  const row = tcpRows().find((r) => r.state !== 'LISTEN' && r.localPort === serverPort && r.remotePort === clientPort);
  return row && { serverUnsent: row.txQueue, serverUnread: row.rxQueue };
}

/** The kernel's listen-overflow counters from /proc/net/netstat (TcpExt). */
export function listenDrops(): { listenOverflows: number; listenDrops: number } {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    if (names[0] !== 'TcpExt:') continue;
    const get = (name: string) => Number(values[names.indexOf(name)] ?? 0);
    return { listenOverflows: get('ListenOverflows'), listenDrops: get('ListenDrops') };
  }
  return { listenOverflows: 0, listenDrops: 0 };
}

/** One row of /proc/net/tcp that involves a given port, seen from either end. */
export interface TcpSocket {
  /** 'server' when the port is the local end (the listener's side), 'client' when it is the remote end. */
  readonly side: 'server' | 'client';
  /** The other end's port for server rows, the socket's own port for client rows: the client's port either way. */
  readonly clientPort: number;
  /** Kernel state name, e.g. ESTABLISHED, SYN_SENT, SYN_RECV. */
  readonly state: string;
  /**
   * Inode of the socket file, 0 when no process holds it. A server-side ESTABLISHED row with
   * inode 0 is a connection that finished its handshake and still waits in the accept queue:
   * accept(2) is what gives it a file. Request sockets (SYN_RECV) and orphans have 0 as well.
   */
  readonly inode: number;
}

export interface TcpSnapshot {
  /** Connections waiting for accept() on the LISTEN socket (Recv-Q); undefined if nothing listens. */
  readonly acceptQueueDepth: number | undefined;
  /** Every other socket with the port at one end: accepted, queued, half-open, and the clients' own. */
  readonly sockets: TcpSocket[];
}

/**
 * Everything /proc/net/tcp (or tcp6) shows about `port`, from a single read. Reading the table
 * makes the kernel walk its whole connection hash, which costs milliseconds of system time on a
 * busy machine, so a sampler reads it once per sample and only the family it needs.
 * (The LISTEN row's tx_queue is not the backlog on current kernels: only sock_diag, i.e. the
 * Send-Q of `ss -ltn`, reports that.)
 */
export function tcpSnapshot(port: number, family: 'tcp' | 'tcp6' = 'tcp'): TcpSnapshot {
  let acceptQueueDepth: number | undefined;
  const sockets: TcpSocket[] = [];
  for (const row of tcpRows([family])) {
    if (row.state === 'LISTEN') {
      if (row.localPort === port) acceptQueueDepth = row.rxQueue;
    } else if (row.localPort === port) {
      sockets.push({ side: 'server', clientPort: row.remotePort, state: row.state, inode: row.inode });
    } else if (row.remotePort === port) {
      sockets.push({ side: 'client', clientPort: row.localPort, state: row.state, inode: row.inode });
    }
  }
  return { acceptQueueDepth, sockets };
}
