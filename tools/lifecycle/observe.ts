/**
 * What the walk looks at after each call: this process's descriptors, the lines of /proc/net/tcp
 * that involve the port, and what `ss` prints for it. Reading only; the parsing is tcp-table.ts.
 */

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { acceptQueue, linesForPort, parseTable, type PortLine } from './tcp-table.js';

export interface Descriptor {
  readonly fd: number;
  /** What the descriptor refers to, as /proc/self/fd shows it: "socket:[81234]", "pipe:[...]". */
  readonly target: string;
  /** The socket's inode, for a socket. */
  readonly inode: number | undefined;
}

export interface View {
  readonly descriptors: Descriptor[];
  readonly lines: PortLine[];
  readonly acceptQueue: number | undefined;
  /** What `ss` printed, or why it could not run. */
  readonly ss: { readonly command: string; readonly output: string[] } | { readonly missing: string };
}

/** This process's descriptors, from /proc/self/fd (one readlink each), lowest first. */
export function descriptors(): Descriptor[] {
  const found: Descriptor[] = [];
  for (const entry of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${entry}`);
    } catch {
      continue; // the descriptor readdir itself had open, closed again by now
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    found.push({ fd: Number(entry), target, inode: inode === undefined ? undefined : Number(inode) });
  }
  return found.sort((a, b) => a.fd - b.fd);
}

/** The IPv4 table's lines for `port`, and the accept queue, from one read of /proc/net/tcp. */
export function tcp(port: number): Pick<View, 'lines' | 'acceptQueue'> {
  // Before bind() there is no port to look for (and port 0 would match every listener's remote end).
  if (port === 0) return { lines: [], acceptQueue: undefined };
  const table = parseTable(readFileSync('/proc/net/tcp', 'utf8'));
  return { lines: linesForPort(table, port), acceptQueue: acceptQueue(table, port) };
}

/** A hung `ss` must not hang the walk. */
const SS_TIMEOUT_MS = 5_000;

/**
 * `ss -tano` for the port: t(cp), a(ll states), n(umeric), o (timers, so TIME_WAIT's countdown can
 * be compared with /proc/net/tcp's). ss reads the kernel through netlink (sock_diag), not /proc,
 * so it is a second, independent view; it also shows a listener's backlog, which /proc does not.
 */
export function ss(port: number): View['ss'] {
  const filter = `( sport = :${port} or dport = :${port} )`;
  try {
    const output = execFileSync('ss', ['-tano', filter], { encoding: 'utf8', timeout: SS_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
    return { command: `ss -tano '${filter}'`, output: output.trimEnd().split('\n').map((line) => line.trimEnd()) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { missing: '`ss` is not installed (package iproute2), so there is no second view here' };
    return { missing: `ss failed: ${String((error as Error).message).split('\n')[0]}` };
  }
}

export function look(port: number): View {
  return { descriptors: descriptors(), ...tcp(port), ss: ss(port) };
}

/** How often a wait re-reads /proc/net/tcp: often enough to feel instant, cheap enough to ignore. */
const POLL_MS = 10;

/**
 * Re-reads the table until `done` holds, for at most `timeoutMs`. The kernel moves a connection's
 * state when packets arrive, which on loopback is soon after a call returns but not before it:
 * the walk waits for the state it describes instead of sleeping and hoping.
 */
export async function until(port: number, done: (view: Pick<View, 'lines' | 'acceptQueue'>) => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done(tcp(port))) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
