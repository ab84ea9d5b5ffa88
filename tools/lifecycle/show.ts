/**
 * A View (observe.ts) as the text a learner reads under each step: descriptors, /proc/net/tcp
 * raw and decoded, the accept queue, and ss. Names come from the walk, which knows what each of
 * its descriptors is and which client port belongs to which connection.
 */

import type { Descriptor, View } from './observe.js';
import { HEADER, type PortLine } from './tcp-table.js';

export interface Names {
  /** What each of the walk's descriptors is, e.g. "listening socket". */
  readonly fds: ReadonlyMap<number, string>;
  /** Connection number by client port. */
  readonly connections: ReadonlyMap<number, number>;
  /** The port under observation; 0 until bind() has given the socket one. */
  readonly port: number;
}

const INDENT = '    ';

/** Wraps a paragraph at `width` columns, every line indented by `indent`. */
export function wrap(text: string, indent = '  ', width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(indent + line);
  return lines.join('\n');
}

export function showView(view: View, names: Names, before: readonly Descriptor[]): string {
  return [
    ...showDescriptors(view.descriptors, names, before),
    ...showTcp(view, names),
    ...showAcceptQueue(view, names),
    ...showSs(view, names),
  ].join('\n');
}

/** Every socket descriptor on its own line, marked when new; the rest summed up on one line. */
function showDescriptors(now: readonly Descriptor[], names: Names, before: readonly Descriptor[]): string[] {
  const lines = ['  Descriptors (/proc/self/fd):'];
  const had = new Map(before.map((d) => [d.fd, d.target]));
  // 0-2 are stdio whatever they are (a parent's `pipe` stdio is a socketpair, not a pipe).
  const sockets = now.filter((d) => d.inode !== undefined && d.fd > 2);
  for (const d of sockets) {
    const name = names.fds.get(d.fd) ?? 'a socket the walk did not open';
    const mark = had.get(d.fd) === d.target ? '' : '   ← new';
    lines.push(`${INDENT}fd ${String(d.fd).padEnd(3)} ${d.target.padEnd(17)} ${name}${mark}`);
  }
  for (const [fd, target] of had) {
    if (fd > 2 && target.startsWith('socket:') && !now.some((d) => d.fd === fd && d.target === target)) {
      lines.push(`${INDENT}fd ${String(fd).padEnd(3)} (was ${target}: closed)`);
    }
  }
  if (sockets.length === 0) lines.push(`${INDENT}no sockets`);
  const others = now.filter((d) => d.inode === undefined && d.fd > 2);
  const kinds = new Map<string, number>();
  for (const d of others) {
    const kind = /^anon_inode:\[(.+)\]$/.exec(d.target)?.[1] ?? (d.target.startsWith('pipe:') ? 'pipe ends' : d.target);
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const summary = [...kinds].map(([kind, count]) => `${count} ${kind}`).join(', ');
  lines.push(`${INDENT}(0-2 are stdin, stdout, stderr; ${others.length} more are Node's own: ${summary})`);
  return lines;
}

function showTcp(view: View, names: Names): string[] {
  const ours = view.descriptors.filter((d) => d.inode !== undefined && names.fds.has(d.fd));
  const listed = new Set(view.lines.map((line) => line.inode));
  const unlisted = ours.filter((d) => !listed.has(d.inode!));
  const lines = [names.port ? `  /proc/net/tcp, lines with port ${names.port} at either end:` : '  /proc/net/tcp:'];
  if (view.lines.length > 0) {
    lines.push(INDENT + HEADER.trimStart(), ...view.lines.map((line) => INDENT + line.raw.trimStart()));
    lines.push(`${INDENT}which reads as:`);
    lines.push(...order(view.lines, names).map((line) => INDENT + decoded(line, view, names)));
  } else if (names.port) lines.push(`${INDENT}no line has port ${names.port}`);
  for (const d of unlisted) {
    lines.push(`${INDENT}no line for ${d.target} (fd ${d.fd}): only listening and connected sockets are in the table`);
  }
  return lines;
}

const ROLE_ORDER = { listener: 0, 'server end': 1, 'client end': 2 } as const;

function order(lines: readonly PortLine[], names: Names): PortLine[] {
  const connection = (line: PortLine) => (line.clientPort === undefined ? 0 : names.connections.get(line.clientPort) ?? 99);
  return [...lines].sort((a, b) => connection(a) - connection(b) || ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
}

/** "server end, connection 1  127.0.0.1:40123 ↔ 127.0.0.1:51234  ESTABLISHED  inode 0: ..." */
function decoded(line: PortLine, view: View, names: Names): string {
  const connection = line.clientPort === undefined ? undefined : names.connections.get(line.clientPort);
  const who = connection === undefined ? line.role : `${line.role}, connection ${connection}`;
  const ends = `${line.local.address}:${line.local.port} ↔ ${line.remote.address}:${line.remote.port}`;
  const facts = [holder(line, view, names)];
  if (line.role !== 'listener' && line.rxQueue > 0) facts.push(unread(line));
  if (line.role !== 'listener' && line.txQueue > 0) facts.push(`tx_queue ${line.txQueue}: bytes sent, not yet acknowledged`);
  if (line.timer) facts.push(`${line.timer.name} timer: ${line.timer.secondsLeft.toFixed(2)} s left`);
  return `${who.padEnd(26)} ${ends.padEnd(34)} ${line.state.padEnd(12)} ${facts.join('; ')}`;
}

/** States in which the peer's FIN has arrived: it counts in rx_queue until read() returns 0 for it. */
const FIN_RECEIVED = new Set(['CLOSE_WAIT', 'LAST_ACK', 'CLOSING']);

/**
 * rx_queue is the kernel's rcv_nxt - copied_seq, and a FIN takes one sequence number: after the
 * peer's FIN the count includes it until read() returns 0, the FIN's way of being read.
 */
function unread(line: PortLine): string {
  if (!FIN_RECEIVED.has(line.state)) return `rx_queue ${line.rxQueue}: bytes received, not yet read`;
  const bytes = line.rxQueue - 1;
  return `rx_queue ${line.rxQueue}: ${bytes > 0 ? `${bytes} bytes and ` : ''}the peer's FIN, not yet read (read() would return ${bytes > 0 ? 'them, then 0' : '0'})`;
}

function holder(line: PortLine, view: View, names: Names): string {
  if (line.inode !== 0) {
    const d = view.descriptors.find((x) => x.inode === line.inode);
    return d ? `inode ${line.inode} = fd ${d.fd}` : `inode ${line.inode}: held by another process`;
  }
  if (line.role === 'server end' && line.state === 'ESTABLISHED' && view.acceptQueue !== undefined) {
    return 'inode 0: in the accept queue, no descriptor yet';
  }
  return 'inode 0: no process holds it, the kernel finishes it alone';
}

function showAcceptQueue(view: View, names: Names): string[] {
  if (!names.port) return [];
  if (view.acceptQueue === undefined) return [`  Accept queue: none (nothing listens on port ${names.port})`];
  return [`  Accept queue: ${view.acceptQueue} waiting (rx_queue of the LISTEN line)`];
}

function showSs(view: View, names: Names): string[] {
  if (!names.port) return ['  ss: nothing to filter on until the socket has a port'];
  if ('missing' in view.ss) return [`  ss: ${view.ss.missing}`];
  return [`  ${view.ss.command}:`, ...view.ss.output.map((line) => INDENT + line)];
}
