/**
 * What the kernel holds for sockets, machine-wide: /proc/net/sockstat (TCP sockets in use and the
 * pages their buffers take), /proc/slabinfo (the objects every socket costs: its TCP state, its
 * inode, its open file and dentry, an epoll entry where one watches it) and nf_conntrack (one
 * entry per tracked connection, against its table's size). Each reader returns undefined where the
 * file cannot be read (slabinfo is root's only), so a report says "–" rather than guessing.
 *
 * These are the whole machine's figures: a measurement takes the difference across an event (N
 * connections opened) and divides, and other programs' sockets in that time are noise in it.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Sockstat {
  /** TCP sockets in use (both ends of a loopback connection count: two per connection). */
  readonly tcpInUse: number;
  /** Pages of socket buffer memory TCP has charged (tcp_memory_allocated): queued data, not the sockets themselves. */
  readonly tcpMemPages: number;
}

/** The TCP line of /proc/net/sockstat. */
export function parseSockstat(text: string): Sockstat | undefined {
  const line = /^TCP: (.*)$/m.exec(text)?.[1];
  if (!line) return undefined;
  const field = (name: string) => {
    const match = new RegExp(`\\b${name} (\\d+)`).exec(line);
    return match ? Number(match[1]) : undefined;
  };
  const tcpInUse = field('inuse');
  const tcpMemPages = field('mem');
  return tcpInUse === undefined || tcpMemPages === undefined ? undefined : { tcpInUse, tcpMemPages };
}

/**
 * The slab caches a TCP socket costs, each object per socket: its TCP state (TCP), the socket's
 * inode (sock_inode_cache), its open file (filp) and dentry, and the epoll registration of a
 * process that watches it with epoll (eventpoll_epi). Both ends of a loopback connection count.
 */
export const SOCKET_SLABS = ['TCP', 'sock_inode_cache', 'filp', 'dentry', 'eventpoll_epi'] as const;

/** Bytes of live objects (active_objs × objsize) in each named cache of /proc/slabinfo that is there. */
export function parseSlabinfo(text: string, names: readonly string[] = SOCKET_SLABS): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [name, active, , objsize] = line.trim().split(/\s+/);
    if (name && names.includes(name) && /^\d+$/.test(active ?? '') && /^\d+$/.test(objsize ?? '')) out[name] = Number(active) * Number(objsize);
  }
  return out;
}

/** nf_conntrack's table: entries now and its size; undefined where the module is not loaded. */
export interface Conntrack {
  readonly count: number;
  readonly max: number;
}

export interface KernelSample {
  readonly sockstat: Sockstat | undefined;
  /** SOCKET_SLABS' bytes added up; undefined where slabinfo is unreadable. */
  readonly slabBytes: number | undefined;
  readonly conntrack: Conntrack | undefined;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

export function conntrack(): Conntrack | undefined {
  const count = Number(read('/proc/sys/net/netfilter/nf_conntrack_count')?.trim());
  const max = Number(read('/proc/sys/net/netfilter/nf_conntrack_max')?.trim());
  return Number.isFinite(count) && Number.isFinite(max) && max > 0 ? { count, max } : undefined;
}

export function kernelSample(): KernelSample {
  const sockstat = read('/proc/net/sockstat');
  const slabinfo = read('/proc/slabinfo');
  const slabs = slabinfo === undefined ? undefined : parseSlabinfo(slabinfo);
  return {
    sockstat: sockstat === undefined ? undefined : parseSockstat(sockstat),
    slabBytes: slabs === undefined || Object.keys(slabs).length === 0 ? undefined : Object.values(slabs).reduce((a, b) => a + b, 0),
    conntrack: conntrack(),
  };
}

/** The kernel's page size (sockstat counts pages); 4096 where getconf is missing. */
export function pageSize(): number {
  try {
    const size = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
    return Number.isInteger(size) && size > 0 ? size : 4096;
  } catch {
    return 4096;
  }
}

/** A /proc/sys value as a number (fs.nr_open, fs.file-max), or undefined. */
export function sysctlNumber(name: string): number | undefined {
  const value = Number(read(`/proc/sys/${name.replace(/\./g, '/')}`)?.trim());
  return Number.isFinite(value) ? value : undefined;
}

/** MemTotal from /proc/meminfo, in bytes. */
export function memTotalBytes(): number | undefined {
  const match = /^MemTotal:\s+(\d+) kB/m.exec(read('/proc/meminfo') ?? '');
  return match ? Number(match[1]) * 1024 : undefined;
}
