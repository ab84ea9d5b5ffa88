/**
 * /proc/net/tcp, read line by line: pure functions from the kernel's text to named fields, with no
 * file access, so every case can be tested from a pasted line.
 *
 * The table has one line per IPv4 TCP socket the kernel has hashed: listening sockets, every
 * connection (accepted or still in an accept queue), and the TIME_WAIT leftovers that no process
 * holds. A socket that is only created or only bound has no line: it is in no hash table yet.
 *
 * A line, as the kernel prints it (net/ipv4/tcp_ipv4.c, get_tcp4_sock and get_timewait4_sock):
 *
 *    sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
 *     3: 0100007F:9CBB 0100007F:C8A2 01 00000000:00000006 00:00000000 00000000  1000        0 81241 ...
 *
 * Addresses are hex: the IPv4 address as the kernel's 32-bit word printed on a little-endian
 * machine (0100007F is 127.0.0.1), the port in plain hex. `st` is the state number from
 * include/net/tcp_states.h. For a LISTEN socket rx_queue is the accept queue's length; for a
 * connection tx_queue is bytes sent and not yet acknowledged, rx_queue bytes received and not yet
 * read. `tr` says which timer runs and `tm->when` how long it has left, in clock ticks of 1/100 s.
 * `inode` names the socket file; it is 0 when no process holds the socket (waiting in an accept
 * queue, orphaned after close, TIME_WAIT).
 *
 * (harness/sockets.ts has the project's reader for queues; this one keeps the columns a learner
 * is shown, timers and raw text included, and could be folded into it.)
 */

/** The kernel's state names, by the number `st` holds (include/net/tcp_states.h). */
export const TCP_STATES: Readonly<Record<number, string>> = {
  0x01: 'ESTABLISHED',
  0x02: 'SYN_SENT',
  0x03: 'SYN_RECV',
  0x04: 'FIN_WAIT1',
  0x05: 'FIN_WAIT2',
  0x06: 'TIME_WAIT',
  0x07: 'CLOSE',
  0x08: 'CLOSE_WAIT',
  0x09: 'LAST_ACK',
  0x0a: 'LISTEN',
  0x0b: 'CLOSING',
  0x0c: 'NEW_SYN_RECV',
};

/** What the `tr` column's values mean (Documentation/networking/proc_net_tcp.rst). */
export const TIMERS: Readonly<Record<number, string>> = {
  0: 'none',
  1: 'retransmit',
  2: 'keepalive',
  3: 'timewait', // TIME_WAIT, and an orphaned FIN_WAIT2, which Linux keeps as a time-wait entry
  4: 'zero window probe',
};

/** USER_HZ: the kernel converts tm->when to clock ticks of this many per second for user space. */
const TICKS_PER_SECOND = 100;

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface TcpLine {
  /** The line as the kernel printed it, up to and including the inode column. */
  readonly raw: string;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** The state's name, e.g. LISTEN; `st 0x..` for a number this table does not know. */
  readonly state: string;
  readonly txQueue: number;
  readonly rxQueue: number;
  /** The running timer, if any, and how long it has left. */
  readonly timer: { readonly name: string; readonly secondsLeft: number } | undefined;
  readonly inode: number;
}

/** The header line, cut to the columns `raw` keeps. */
export const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

/** 0100007F -> 127.0.0.1: the four bytes of the kernel's word, lowest first. */
export function decodeIPv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

function endpoint(field: string): Endpoint {
  const [address = '', port = '0'] = field.split(':');
  return { address: decodeIPv4(address), port: parseInt(port, 16) };
}

const FIRST_TEN_FIELDS = /^\s*(?:\S+\s+){9}\S+/;

/** One line of the table, or undefined for the header and blank lines. */
export function parseLine(line: string): TcpLine | undefined {
  const fields = line.trim().split(/\s+/);
  // sl, local, remote, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
  if (fields.length < 10 || !/^\d+:$/.test(fields[0]!)) return undefined;
  const [, local, remote, st, queues, timer, , , , inode] = fields as [string, string, string, string, string, string, string, string, string, string];
  const [tx = '0', rx = '0'] = queues.split(':');
  const [tr = '0', when = '0'] = timer.split(':');
  const stateNumber = parseInt(st, 16);
  const timerCode = parseInt(tr, 16);
  return {
    // The kernel's own spacing, up to the inode column, which is where the learner's eye stops.
    raw: FIRST_TEN_FIELDS.exec(line)![0],
    local: endpoint(local),
    remote: endpoint(remote),
    state: TCP_STATES[stateNumber] ?? `st 0x${st}`,
    txQueue: parseInt(tx, 16),
    rxQueue: parseInt(rx, 16),
    timer:
      timerCode === 0
        ? undefined
        : { name: TIMERS[timerCode] ?? `timer ${timerCode}`, secondsLeft: parseInt(when, 16) / TICKS_PER_SECOND },
    inode: Number(inode),
  };
}

export function parseTable(text: string): TcpLine[] {
  return text.split('\n').flatMap((line) => parseLine(line) ?? []);
}

/** Which end of a connection to `port` a line is: the listener, the server's end, or the client's. */
export type Role = 'listener' | 'server end' | 'client end';

export interface PortLine extends TcpLine {
  readonly role: Role;
  /** The client's port: the remote port of a server end, the local port of a client end. */
  readonly clientPort: number | undefined;
}

/** The lines that involve `port`, at either end, each with its role. */
export function linesForPort(lines: readonly TcpLine[], port: number): PortLine[] {
  return lines.flatMap((line): PortLine[] => {
    if (line.local.port === port && line.state === 'LISTEN') return [{ ...line, role: 'listener', clientPort: undefined }];
    if (line.local.port === port) return [{ ...line, role: 'server end', clientPort: line.remote.port }];
    if (line.remote.port === port) return [{ ...line, role: 'client end', clientPort: line.local.port }];
    return [];
  });
}

/** The accept queue's length: rx_queue of the line listening on `port`; undefined if none listens. */
export function acceptQueue(lines: readonly TcpLine[], port: number): number | undefined {
  return lines.find((line) => line.state === 'LISTEN' && line.local.port === port)?.rxQueue;
}
