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

/**
 * Sentences about one server's round trips and connections: what its calls mean beyond the
 * table's counts (the read and write calls of an echo, its context switches, are the table's).
 */
export function explain(roundTrip: PhaseCounts, connection: PhaseCounts, connections: number): string[] {
  const rt = perUnit(roundTrip);
  const conn = perUnit(connection);
  const out: string[] = [];

  const reads = sum(rt, READS);
  const writes = sum(rt, WRITES);
  const enters = rt.get('io_uring_enter') ?? 0;
  if (enters > 0 && reads + writes < 0.1) {
    // The completion model: the bytes move without a read or write call of the server's own.
    out.push(
      `No read or write calls moved the bytes (${fmt(reads + writes)} per round trip): the kernel received and sent them as operations ` +
        `handed over in the io_uring submission ring. It made ${fmt(enters)} io_uring_enter calls per round trip` +
        (enters >= 1.5
          ? ': one per operation submitted (a send, then a receive armed again), each on its own.'
          : enters < 1 && connections > 1
            ? `: each call submitted the operations queued in a loop turn and waited for completions, about ${fmt(1 / enters)} round trips' worth.`
            : '.'),
    );
  }
  const emptyReads = READS.reduce((total, name) => total + (roundTrip.calls[name]?.errors ?? 0), 0) / roundTrip.units;
  if (emptyReads >= 0.5) out.push(`${fmt(emptyReads)} reads per round trip failed with EAGAIN: the server reads until the socket is empty.`);
  if (writes - 1 >= 0.3 && (rt.get('futex') ?? 0) >= 0.5) {
    out.push(
      `The ${fmt(writes - 1)} writes and ${fmt(Math.max(0, reads - 1 - emptyReads))} reads per round trip beyond the echo's own are threads waking each other's ` +
        'event loops (libuv wakes a loop by writing to its eventfd, and the loop reads it).',
    );
  }

  // How it waits: whichever multiplexer it calls most. Node's own loop (epoll_pwait) also turns in
  // a lab that makes its own calls, between its bounded waits, so the larger family is the model's.
  const scans = sum(rt, SCANS);
  const epollWaits = sum(rt, EPOLL_WAITS);
  const waits = Math.max(scans, epollWaits);
  const call = scans >= epollWaits ? (SCANS.find((n) => rt.has(n)) ?? 'poll') : (EPOLL_WAITS.filter((n) => rt.has(n)).sort((a, b) => rt.get(b)! - rt.get(a)!)[0] ?? 'epoll_wait');
  if (waits >= 0.8) {
    out.push(`It waited in ${call} ${fmt(waits)} times per round trip: before each read, it asks the kernel whether its socket is ready.`);
  } else if (waits > 0 && 1 / waits > connections) {
    out.push(
      `It waited in ${call} once every ${fmt(1 / waits)} round trips, more than the ${connections} connections: after answering, it read the same socket ` +
        "again before waiting, and the client's next message was usually there already (slowed by strace, the server gives it the time).",
    );
  } else if (waits > 0 && connections > 1) {
    out.push(
      `It waited in ${call} ${fmt(waits)} times per round trip: each wait returned about ${fmt(1 / waits)} ready sockets of the ${connections} open, ` +
        `and it served them all before waiting again${scans >= epollWaits ? ' (each poll call passes, and the kernel checks, every open descriptor)' : ' (epoll returns only the ready ones)'}.`,
    );
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
    out.push(
      `It passed messages between processes: ${fmt(sum(conn, ['sendmsg', 'recvmsg']))} sendmsg/recvmsg calls per connection ` +
        '(an IPC channel to a child, and the connection\'s descriptor itself, which travels as SCM_RIGHTS ancillary data).',
    );
  }

  return out;
}
