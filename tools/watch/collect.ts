/**
 * Takes one sample of a port for the live view: its sockets from /proc/net/tcp and tcp6, the
 * listen-overflow counters, and the server's processes, found from the listening socket's inode
 * (the process that holds the socket is the server, whatever its name), plus their descendants.
 */

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { stat } from '../../harness/processes.js';
import { decodeAddress, listenDrops, tcpRows } from '../../harness/sockets.js';
import type { ListenerRow, PortSample, ProcessRow, SocketRow } from './view.js';

/** A row of the kernel's TCP tables with its addresses decoded. */
interface RawRow {
  readonly local: { address: string; port: number };
  readonly remote: { address: string; port: number };
  readonly state: string;
  readonly txQueue: number;
  readonly rxQueue: number;
  readonly inode: number;
}

function rawRows(): RawRow[] {
  return tcpRows().map((row) => ({
    local: { address: decodeAddress(row.localAddress), port: row.localPort },
    remote: { address: decodeAddress(row.remoteAddress), port: row.remotePort },
    state: row.state,
    txQueue: row.txQueue,
    rxQueue: row.rxQueue,
    inode: row.inode,
  }));
}

const joined = (a: { address: string; port: number }) => `${a.address}:${a.port}`;

/**
 * The backlog of each listening socket, which /proc/net/tcp does not show: only the kernel's
 * sock_diag interface reports it, as the Send-Q column of `ss -ltn`. Undefined without `ss`.
 */
function backlogs(port: number): Map<string, number> | undefined {
  try {
    const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const result = new Map<string, number>();
    for (const line of out.split('\n')) {
      const f = line.trim().split(/\s+/);
      // State Recv-Q Send-Q Local:Port Peer:Port
      if (f.length >= 4) result.set(f[3]!.replace(/^\[?::ffff:/, '').replace(/^\*/, '0.0.0.0'), Number(f[2]));
    }
    return result;
  } catch {
    return undefined;
  }
}

/** Every pid whose descriptors include one of these socket inodes. */
function holdersOf(inodes: ReadonlySet<number>): number[] {
  const holders: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match && inodes.has(Number(match[1]))) {
        holders.push(Number(entry));
        break;
      }
    }
  }
  return holders;
}

function command(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return argv.map((arg, i) => (i === 0 ? arg.split('/').pop() : arg)).join(' ').slice(0, 80);
  } catch {
    return '?';
  }
}

/** The holders and their descendants, from one pass over /proc. */
function serverTree(roots: readonly number[]): ProcessRow[] {
  const rows = new Map<number, ProcessRow>();
  const childrenOf = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const info = stat(pid);
    if (!info) continue;
    childrenOf.set(info.ppid, [...(childrenOf.get(info.ppid) ?? []), pid]);
    rows.set(pid, { pid, ppid: info.ppid, command: '', threads: info.threads, cpuMs: info.cpuMs, rssBytes: info.rssBytes });
  }
  const seen = new Set<number>();
  const order = [...roots];
  for (let i = 0; i < order.length; i++) {
    const pid = order[i]!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    order.push(...(childrenOf.get(pid) ?? []));
  }
  return [...seen].flatMap((pid) => {
    const row = rows.get(pid);
    return row ? [{ ...row, command: command(pid) }] : [];
  });
}

/**
 * Remembers which processes hold the listening sockets: finding them reads every process's
 * descriptors, so it is done again only when the set of listening sockets changes.
 */
export class PortCollector {
  #inodes = '';
  #holders: number[] = [];

  constructor(
    readonly port: number,
    readonly host: string | undefined,
  ) {}

  sample(atMs: number): PortSample {
    const rows = rawRows().filter((row) => this.host === undefined || row.local.address === this.host || row.remote.address === this.host || row.state === 'LISTEN');
    const listening = rows.filter((row) => row.state === 'LISTEN' && row.local.port === this.port);
    const backlog = listening.length > 0 ? backlogs(this.port) : undefined;
    const listeners: ListenerRow[] = listening.map((row) => ({
      local: joined(row.local),
      acceptQueue: row.rxQueue,
      backlog: backlog?.get(joined(row.local).replace(/^::ffff:/, '')),
      inode: row.inode,
    }));
    const sockets: SocketRow[] = rows
      .filter((row) => row.state !== 'LISTEN' && (row.local.port === this.port || row.remote.port === this.port))
      .map((row) => ({
        side: row.local.port === this.port ? 'server' : 'client',
        local: joined(row.local),
        remote: joined(row.remote),
        state: row.state,
        sendQ: row.txQueue,
        recvQ: row.rxQueue,
        inode: row.inode,
      }));

    const inodes = new Set(listeners.map((l) => l.inode).filter((inode) => inode !== 0));
    const key = [...inodes].sort().join(',');
    if (key !== this.#inodes) {
      this.#inodes = key;
      this.#holders = inodes.size > 0 ? holdersOf(inodes) : [];
    }
    return {
      atMs,
      host: this.host ?? '*',
      port: this.port,
      listeners,
      sockets,
      counters: listenDrops(),
      processes: this.#holders.length > 0 ? serverTree(this.#holders) : [],
    };
  }
}
