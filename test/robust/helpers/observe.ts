/**
 * What the robust suite observes of a running server from outside, through /proc: its live and
 * zombie children, its threads, its memory and CPU over time, and the kernel queues of one
 * connection. Built on `bench/lib/procfs.ts`, which tests and benchmarks share.
 */

import { readFileSync } from 'node:fs';
import { childPids, stat, treeUsage } from '../../../bench/lib/procfs.js';

export function liveChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state !== 'Z');
}

export function zombieChildren(pid: number): number[] {
  return childPids(pid).filter((child) => stat(child)?.state === 'Z');
}

export function threadCount(pid: number): number {
  return stat(pid)?.threads ?? 0;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const info = stat(pid);
  return info !== undefined && info.state !== 'Z';
}

/**
 * Samples the resident memory of a process tree (server plus children) every `intervalMs` until
 * stopped, and keeps the peak. RSS is what the kernel has to find room for, shared pages included:
 * the conservative measure for "stays under its baseline + N MiB".
 */
export class MemorySampler {
  #peak = 0;
  #samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pid: number, intervalMs = 100) {
    this.#take();
    this.#timer = setInterval(() => this.#take(), intervalMs);
  }

  get peakBytes(): number {
    return this.#peak;
  }
  get samples(): number {
    return this.#samples;
  }

  stop(): number {
    clearInterval(this.#timer);
    this.#take();
    return this.#peak;
  }

  #take(): void {
    const rss = treeUsage(this.pid).rssBytes;
    this.#samples++;
    if (rss > this.#peak) this.#peak = rss;
  }
}

/** CPU time (user + system, ms) of the process itself, all its threads, no children. */
export function processCpuMs(pid: number): number {
  return stat(pid)?.cpuMs ?? 0;
}

export interface ConnectionQueues {
  /** Bytes the kernel holds for the server that the server process has not read yet (Recv-Q). */
  readonly serverUnread: number;
  /** Bytes the server has written that the kernel has not delivered yet (Send-Q). */
  readonly serverUnsent: number;
}

/**
 * The kernel queues of the server's end of one connection, found in /proc/net/tcp by the server
 * port and the client's port. Whoever holds the socket (the server or one of its children), the
 * kernel keeps the queues: a Recv-Q that stays full means the server stopped reading.
 */
export function connectionQueues(serverPort: number, clientPort: number): ConnectionQueues | undefined {
  const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (!fields[1]?.endsWith(hex(serverPort)) || !fields[2]?.endsWith(hex(clientPort))) continue;
      const [tx, rx] = (fields[4] ?? '0:0').split(':');
      return { serverUnsent: parseInt(tx ?? '0', 16), serverUnread: parseInt(rx ?? '0', 16) };
    }
  }
  return undefined;
}

/**
 * The local address of the socket listening on `port`, as a dotted quad (IPv4) or the raw hex
 * (IPv6), read from the kernel rather than from the server's own log line.
 */
export function listeningAddress(port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== '0A' || !local.endsWith(`:${hexPort}`)) continue;
      const address = local.slice(0, local.indexOf(':'));
      if (address.length !== 8) return address;
      // /proc/net/tcp prints the IPv4 address as a little-endian 32-bit word.
      return [6, 4, 2, 0].map((i) => parseInt(address.slice(i, i + 2), 16)).join('.');
    }
  }
  return undefined;
}

/** The soft limit on open files of `pid`, from /proc/PID/limits; undefined if unlimited. */
export function openFileLimit(pid: number): number | undefined {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
