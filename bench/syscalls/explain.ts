/**
 * What a server's counts say, in sentences built from the numbers: which calls move the bytes,
 * how the server waits, whether threads or processes hand work to each other. Each sentence is
 * said only when its evidence is there, keyed on the calls seen, never on which lab it is.
 */

import type { CallCount } from './trace.js';
import type { PhaseCounts } from './measure.js';

/** Calls per unit (round trip or connection) of one phase, by name. */
export function perUnit(phase: PhaseCounts): Map<string, number> {
  const rates = new Map<string, number>();
  for (const [name, count] of Object.entries(phase.calls) as [string, CallCount][]) rates.set(name, count.calls / phase.units);
  return rates;
}

const sum = (rates: Map<string, number>, names: readonly string[]) => names.reduce((total, name) => total + (rates.get(name) ?? 0), 0);
const fmt = (n: number) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));

const READS = ['read', 'recvfrom', 'recvmsg', 'readv'];
const WRITES = ['write', 'sendto', 'sendmsg', 'writev'];
const SCANS = ['poll', 'ppoll', 'select', 'pselect6'];
const EPOLL_WAITS = ['epoll_wait', 'epoll_pwait', 'epoll_pwait2'];
const STARTS = ['clone', 'clone3', 'fork', 'vfork'];

/** Sentences about one server's round trips and connections. */
export function explain(roundTrip: PhaseCounts, connection: PhaseCounts, connections: number): string[] {
  const rt = perUnit(roundTrip);
  const conn = perUnit(connection);
  const out: string[] = [];

  const reads = sum(rt, READS);
  const writes = sum(rt, WRITES);
  out.push(`Each round trip took ${fmt(reads)} read and ${fmt(writes)} write calls: the bytes in and the echo out.`);
  const emptyReads = READS.reduce((total, name) => total + (roundTrip.calls[name]?.errors ?? 0), 0) / roundTrip.units;
  if (emptyReads >= 0.5) out.push(`${fmt(emptyReads)} of those reads per round trip failed with EAGAIN: the server reads until the socket is empty.`);

  const scans = sum(rt, SCANS);
  const epollWaits = sum(rt, EPOLL_WAITS);
  if (scans >= 0.5) {
    out.push(`It waited in ${fmt(scans)} ${SCANS.find((n) => rt.has(n)) ?? 'poll'} calls per round trip: it asks the kernel about the sockets it holds, every time, before each read or write.`);
  }
  if (epollWaits > 0 && epollWaits < 0.5 && connections > 1) {
    out.push(
      `It woke from epoll ${fmt(epollWaits)} times per round trip: one wake-up returned about ${fmt(1 / epollWaits)} ready sockets of the ${connections} open, and served them all.`,
    );
  } else if (epollWaits >= 0.5) {
    out.push(`It called epoll_wait ${fmt(epollWaits)} times per round trip.`);
  }
  if ((rt.get('epoll_ctl') ?? 0) >= 0.5) {
    out.push(`It changed its epoll registrations ${fmt(rt.get('epoll_ctl')!)} times per round trip (epoll_ctl): asking for, then dropping, write readiness.`);
  }
  const futex = rt.get('futex') ?? 0;
  if (futex >= 0.5) {
    out.push(`Threads handed work to each other: ${fmt(futex)} futex calls per round trip (a thread waking another, or going to sleep until woken).`);
  }

  const starts = sum(conn, STARTS);
  if (starts >= 0.5) {
    const exec = conn.get('execve') ?? 0;
    const mmaps = conn.get('mmap') ?? 0;
    out.push(
      `Each connection started ${fmt(starts)} thread${starts >= 1.5 ? 's' : ''} or process${starts >= 1.5 ? 'es' : ''} (clone)` +
        (exec >= 0.5 ? `, ${fmt(exec)} of them a new program (execve), with ${fmt(mmaps)} mmap calls to load it` : '') +
        '.',
    );
  }
  const accepts = conn.get('accept4') ?? conn.get('accept') ?? 0;
  if (accepts >= 1.5) out.push(`It called accept ${fmt(accepts)} times per connection: the extra calls found the queue empty (EAGAIN).`);
  if ((conn.get('sendmsg') ?? 0) >= 0.5 || (conn.get('recvmsg') ?? 0) >= 0.5) {
    out.push(`Each connection's descriptor travelled between processes: ${fmt(sum(conn, ['sendmsg', 'recvmsg']))} sendmsg/recvmsg calls per connection (SCM_RIGHTS).`);
  }

  const v = roundTrip.contextSwitches.voluntary / roundTrip.units;
  const iv = roundTrip.contextSwitches.involuntary / roundTrip.units;
  out.push(`Context switches per round trip: ${fmt(v)} voluntary (a thread waited), ${fmt(iv)} involuntary (the scheduler took its core).`);
  return out;
}
