/**
 * What one idle connection costs, from two samples around opening N of them, and what a million
 * would need on the machine measured. Pure arithmetic on recorded figures: the idle scenario calls
 * `perConnection` while it measures, the renderer calls `millionOutlook` on the results file.
 *
 * The kernel figures are machine-wide (harness/kernel.ts) and, on loopback, cover both ends of
 * each connection: the load generator's socket is in this kernel too. Both ends are the same kind
 * of TCP socket, so a server whose clients are elsewhere holds about half of it.
 */

import type { KernelSample } from '../../harness/kernel.js';

export interface LevelSamples {
  /** Idle connections held. */
  readonly n: number;
  /** The server tree's RSS fresh from start, before any connection. */
  readonly freshRssBytes: number | null;
  /** The server tree's RSS while holding the N. */
  readonly rssBytes: number | null;
  /** The kernel just before opening and while holding. */
  readonly before: KernelSample;
  readonly during: KernelSample;
  readonly pageSize: number;
}

/** Per idle connection; null where a figure was not readable or N is 0. */
export interface PerConnection {
  readonly rssPerConnection: number | null;
  /** Growth of the socket slabs (both ends), bytes. */
  readonly kernelSlabBytes: number | null;
  /** Growth of TCP's socket-buffer pages (both ends), bytes: about 0 for idle sockets with empty queues. */
  readonly kernelBufferBytes: number | null;
  /** (slab + buffers) / N: the kernel's bytes per connection, both ends. */
  readonly kernelPerConnection: number | null;
  /** TCP sockets in use per connection (2 on loopback: the check that the kernel figures saw both ends). */
  readonly socketsPerConnection: number | null;
  /** nf_conntrack entries per connection (0 where loopback is not tracked); null without conntrack. */
  readonly conntrackPerConnection: number | null;
}

const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? null : b - a);

export function perConnection(s: LevelSamples): PerConnection {
  const per = (value: number | null) => (value === null || s.n === 0 ? null : value / s.n);
  const slab = delta(s.before.slabBytes, s.during.slabBytes);
  const pages = delta(s.before.sockstat?.tcpMemPages, s.during.sockstat?.tcpMemPages);
  const buffers = pages === null ? null : pages * s.pageSize;
  return {
    rssPerConnection: s.rssBytes === null || s.freshRssBytes === null ? null : per(s.rssBytes - s.freshRssBytes),
    kernelSlabBytes: slab,
    kernelBufferBytes: buffers,
    kernelPerConnection: slab === null ? null : per(slab + (buffers ?? 0)),
    socketsPerConnection: per(delta(s.before.sockstat?.tcpInUse, s.during.sockstat?.tcpInUse)),
    conntrackPerConnection: per(delta(s.before.conntrack?.count, s.during.conntrack?.count)),
  };
}

/* ---- A million connections ------------------------------------------------------------------ */

export const MILLION = 1_000_000;
/**
 * The load a million mostly idle clients put on the server's CPU, to weigh the wake-ups against:
 * each sends one message a minute (a chat or telemetry client), 16,667 round trips a second in
 * all, so one core may spend at most 60 µs on each. An assumption of this report, not a
 * measurement: it says how the per-round-trip cost would be read, not what any service needs.
 */
export const MESSAGES_PER_CLIENT_PER_MINUTE = 1;
const CPU_BUDGET_US = 1e6 / ((MILLION * MESSAGES_PER_CLIENT_PER_MINUTE) / 60);

export type Resource = 'memory' | 'descriptors' | 'conntrack' | 'cpu';

/** One server's measured figures at the most idle connections it held, and where it stopped. */
export interface ServerFigures {
  readonly label: string;
  /** The most idle connections it held (every one answered) with per-connection figures. */
  readonly held: number;
  readonly rssPerConnection: number | null;
  readonly kernelPerConnection: number | null;
  readonly conntrackPerConnection: number | null;
  /** Server CPU µs per busy round trip beside 0 idle connections and beside `held`. */
  readonly cpuUsAtZero: number | null;
  readonly cpuUsAtHeld: number | null;
  /** The first level it did not reach, and why (one line from the run). */
  readonly stopped?: { readonly level: number; readonly reason: string };
}

/** The machine's limits, as the run recorded them. */
export interface MachineLimits {
  readonly memTotalBytes?: number;
  /** fs.nr_open: the most descriptors one process may be given. */
  readonly nrOpen?: number;
  /** fs.file-max: open files on the whole machine. */
  readonly fileMax?: number;
  readonly conntrackMax?: number;
}

export interface Need {
  readonly resource: Resource;
  /** What a million connections would take, in the resource's unit (bytes, descriptors, entries, CPU µs per round trip). */
  readonly need: number;
  readonly limit: number;
  /** need / limit: 1 or more means it runs out. */
  readonly share: number;
}

export interface Outlook {
  readonly label: string;
  readonly held: number;
  /** Every resource that could be weighed, tightest first. */
  readonly needs: readonly Need[];
  readonly stopped?: ServerFigures['stopped'];
}

/**
 * Extrapolates linearly from the most a server held to a million: memory (its RSS and the
 * kernel's sockets, both ends, per connection), descriptors (one per connection in the server's
 * process against fs.nr_open; two per loopback connection against fs.file-max), conntrack entries,
 * and what the idle connections add to the CPU of each busy round trip (its growth per idle
 * connection, from 0 to `held`, carried on to a million) against CPU_BUDGET_US.
 */
export function millionOutlook(server: ServerFigures, machine: MachineLimits): Outlook {
  const needs: Need[] = [];
  const add = (resource: Resource, need: number | null, limit: number | undefined) => {
    if (need !== null && limit !== undefined && limit > 0) needs.push({ resource, need, limit, share: need / limit });
  };
  const memory = server.rssPerConnection === null || server.kernelPerConnection === null ? null : MILLION * (Math.max(0, server.rssPerConnection) + Math.max(0, server.kernelPerConnection));
  add('memory', memory, machine.memTotalBytes);
  const descriptors = [
    ...(machine.nrOpen ? [{ need: MILLION, limit: machine.nrOpen }] : []),
    ...(machine.fileMax ? [{ need: 2 * MILLION, limit: machine.fileMax }] : []),
  ].sort((a, b) => b.need / b.limit - a.need / a.limit)[0];
  if (descriptors) add('descriptors', descriptors.need, descriptors.limit);
  add('conntrack', server.conntrackPerConnection === null ? null : MILLION * Math.max(0, server.conntrackPerConnection), machine.conntrackMax);
  if (server.cpuUsAtZero !== null && server.cpuUsAtHeld !== null && server.held > 0) {
    // Only what the idle connections add: the busy round trip's own cost at 0 idle is a wake-up
    // from sleep each time with one busy connection, which a loaded server would batch.
    const perIdle = Math.max(0, server.cpuUsAtHeld - server.cpuUsAtZero) / server.held;
    add('cpu', perIdle * MILLION, CPU_BUDGET_US);
  }
  needs.sort((a, b) => b.share - a.share);
  return { label: server.label, held: server.held, needs, ...(server.stopped ? { stopped: server.stopped } : {}) };
}

export { CPU_BUDGET_US };
