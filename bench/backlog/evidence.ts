/**
 * From raw observations to conclusions: which /proc/net/tcp rows belong to which client, where
 * each client's connection was at every sample, and so where it waited and for how long.
 *
 * The rules, each backed by something the kernel showed:
 *   1. SYN retransmit: the handshake took at least SYN_WAIT_FLOOR_MS. On loopback a handshake that
 *      is answered completes in microseconds; only a dropped SYN (accept queue full) and the
 *      client kernel's retransmit timer, whose first step is 1 s, make it take this long.
 *   2. Final ACK dropped: the client had its 'connect' event, yet the server side still showed
 *      only a request socket (SYN_RECV). The client looks connected; the server never took it.
 *   3. Kernel accept queue: the server side showed the connection ESTABLISHED with no socket
 *      file (inode 0): the handshake is done and it waits for accept(2). It lasts until the first
 *      sample that saw the connection accepted, or the echo if that came first.
 *   4. User space: the server process held the connection (accept returned) and the echo still
 *      came more than `userSpaceWaitMs` later: it waited in the program (a queue, a child start).
 *   5. Unobserved: the echo was late, but no sample caught the connection anywhere above.
 * Rules 3 to 5 count a wait only when it lasted more than `userSpaceWaitMs`.
 */

import type { TcpSocket } from '../../harness/sockets.js';
import type { RawSample } from './port-sampler.js';
import type { ClientRecord, ClientTiming, KernelSettings, Phase, Sample, Settings, Wait } from './results.js';

/** A handshake slower than this was not answered the first time (the SYN RTO starts at 1 s). */
export const SYN_WAIT_FLOOR_MS = 500;
/** How far a connect time may sit from a retransmit time and still be that retransmit. */
const RETRANSMIT_TOLERANCE_MS = 250;
/** A request socket seen this long after the client connected was not an in-flight ACK. */
const HALF_OPEN_MARGIN_MS = 50;
/** Linux's initial retransmission timeout for a SYN (TCP_TIMEOUT_INIT). */
const SYN_INITIAL_RTO_S = 1;

export function phaseOf(server: TcpSocket | undefined, client: TcpSocket | undefined): Phase {
  if (server) {
    if (server.state === 'SYN_RECV') return 'syn-recv';
    if (server.state === 'ESTABLISHED' || server.state === 'CLOSE_WAIT') return server.inode === 0 ? 'accept-queue' : 'accepted';
    return 'closing';
  }
  if (client?.state === 'SYN_SENT') return 'syn-sent';
  if (client && client.state !== 'ESTABLISHED') return 'closing';
  return 'none';
}

/**
 * Ties client ports to clients: a client that connected knows its port; the ports of clients
 * that never connected are given, in order of first appearance, to those clients in start order.
 */
export function attributePorts(timings: readonly ClientTiming[], raw: readonly RawSample[]): { ports: Map<number, number>; strangers: number } {
  const ports = new Map<number, number>();
  for (const t of timings) if (t.localPort !== undefined) ports.set(t.localPort, t.client);
  const unconnected = timings.filter((t) => t.localPort === undefined).map((t) => t.client);
  const strangers = new Set<number>();
  for (const sample of raw) {
    for (const socket of sample.sockets) {
      if (ports.has(socket.clientPort) || strangers.has(socket.clientPort)) continue;
      const next = unconnected.shift();
      if (next === undefined) strangers.add(socket.clientPort);
      else ports.set(socket.clientPort, next);
    }
  }
  return { ports, strangers: strangers.size };
}

export function toSamples(raw: readonly RawSample[], ports: Map<number, number>, clients: number): Sample[] {
  return raw.map(({ sockets, ...rest }) => {
    const server = new Map<number, TcpSocket>();
    const client = new Map<number, TcpSocket>();
    for (const socket of sockets) {
      const owner = ports.get(socket.clientPort);
      if (owner !== undefined) (socket.side === 'server' ? server : client).set(owner, socket);
    }
    const phases = Array.from({ length: clients }, (_, i) => phaseOf(server.get(i + 1), client.get(i + 1)));
    return { ...rest, phases };
  });
}

/**
 * The moments (s after the first SYN) at which the client's kernel resends an unanswered SYN:
 * 1 s apart for the first tcp_syn_linear_timeouts + 1 timeouts (Linux 6.7+), doubling after
 * that; doubling from the start on older kernels (1, 3, 7, 15 s).
 */
export function synRetransmitSchedule(kernel: KernelSettings): number[] {
  const linear = kernel.synLinearTimeouts ?? -1;
  const retries = kernel.synRetries ?? 6;
  const times: number[] = [];
  let at = 0;
  let rto = SYN_INITIAL_RTO_S;
  for (let i = 0; i < retries; i++) {
    at += rto;
    times.push(at);
    if (i + 1 > linear) rto *= 2;
  }
  return times;
}

export function classify(
  timing: ClientTiming,
  samples: readonly Sample[],
  settings: Settings,
  kernel: KernelSettings,
): ClientRecord {
  const index = timing.client - 1;
  const during = (phase: Phase) => samples.filter((s) => s.phases[index] === phase).map((s) => s.t);
  const acceptedMs = during('accepted')[0];
  const waits: Wait[] = [];
  let synRetransmitsS: number[] | undefined;
  let clear = timing.startMs; // the end of the last wait explained so far

  // 1. The handshake itself was slow (or never finished) because SYNs were dropped.
  const handshakeEnd = timing.connectMs ?? (during('syn-sent').length > 0 ? during('syn-sent').at(-1) : undefined);
  if (handshakeEnd !== undefined && handshakeEnd - timing.startMs >= SYN_WAIT_FLOOR_MS) {
    waits.push({ where: 'syn-retransmit', fromMs: timing.startMs, toMs: handshakeEnd });
    clear = handshakeEnd;
    if (timing.connectMs !== undefined) {
      const tookS = (timing.connectMs - timing.startMs) / 1000;
      const schedule = synRetransmitSchedule(kernel);
      const k = schedule.findIndex((at) => Math.abs(at - tookS) * 1000 <= RETRANSMIT_TOLERANCE_MS);
      if (k >= 0) synRetransmitsS = schedule.slice(0, k + 1);
    }
  }
  if (timing.connectMs === undefined) return record(timing, acceptedMs, waits, synRetransmitsS);

  // 2. Connected as far as the client knows, but the server side was still a request socket.
  // (a sample may catch the microseconds between the client's ACK and the server's child socket:
  // only a request socket that outlives that by a margin means the ACK was dropped)
  const halfOpen = during('syn-recv').filter((t) => t >= timing.connectMs! + HALF_OPEN_MARGIN_MS);
  if (halfOpen.length > 0) {
    const until = samples.find((s) => s.t > halfOpen.at(-1)! && s.phases[index] !== 'syn-recv')?.t ?? halfOpen.at(-1)!;
    waits.push({ where: 'final-ack-dropped', fromMs: timing.connectMs, toMs: until });
    clear = until;
  }
  clear = Math.max(clear, timing.connectMs);
  const answered = timing.firstEchoMs ?? timing.closedMs ?? samples.at(-1)?.t ?? clear;

  // 3. Waiting in the accept queue, until accept() (or the echo, which follows it within a sample).
  if (during('accept-queue').length > 0) {
    const until = Math.min(acceptedMs ?? answered, answered);
    // A stay shorter than the user-space threshold is not a wait (a sample caught it in passing).
    if (until - clear > settings.userSpaceWaitMs) {
      waits.push({ where: 'accept-queue', fromMs: clear, toMs: until });
      clear = until;
    }
  }

  // 4 and 5. Whatever remains before the echo.
  if (answered - clear > settings.userSpaceWaitMs) {
    const heldByServer = acceptedMs !== undefined && acceptedMs <= answered;
    waits.push({ where: heldByServer ? 'user-space' : 'unobserved', fromMs: clear, toMs: answered });
  }
  return record(timing, acceptedMs, waits, synRetransmitsS);
}

function record(timing: ClientTiming, acceptedMs: number | undefined, waits: Wait[], synRetransmitsS: number[] | undefined): ClientRecord {
  return {
    ...timing,
    ...(acceptedMs === undefined ? {} : { acceptedMs }),
    waits,
    ...(synRetransmitsS === undefined ? {} : { synRetransmitsS }),
  };
}
