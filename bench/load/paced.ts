/**
 * An open-loop HTTP load generator: requests at a fixed mean rate, on a schedule that does not
 * wait for the server. The other generators here are closed loops (the next request waits for the
 * last answer), which is right for "how fast can it go" and wrong for "what does a stalled server
 * do to its clients": a closed loop stops asking while the server stalls, so the stall never shows
 * in its latencies (coordinated omission). Here each request has its due time, fixed before the
 * run; latency is counted from that due time, so a request that could not even be sent while the
 * server was frozen carries the whole wait.
 *
 * A run, in steps:
 *   1. Open the connections (keep-alive) and warm up: one request on each, answered, not counted.
 *   2. For `durationMs`, send each request when it is due: arrivals are a Poisson process of the
 *      given rate from a fixed seed, so every run with the same settings offers the very same
 *      schedule. Requests take the connections in turn and are pipelined on them (HTTP/1.1
 *      answers in order), so a connection never holds a request back for an earlier one's answer.
 *   3. Drain: give the requests still outstanding `drainTimeoutMs`; any still unanswered count.
 *   4. Close. Every response is checked: status 200 and a body that is the request's own target.
 */

import net from 'node:net';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { Signal } from './signal.js';

export interface PacedOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** Seeds the arrival schedule; the same seed, rate and duration give the same schedule. */
  readonly seed?: number;
  /** The width of the over-time buckets. */
  readonly bucketMs?: number;
  readonly drainTimeoutMs?: number;
  readonly warmupTimeoutMs?: number;
  /** Called at the start and at each bucket boundary of step 2, with the time since its start. */
  readonly onTick?: (tMs: number) => void;
}

/** Requests due in one bucket of the run: how many, and their latencies, in µs. */
export interface PacedBucket {
  readonly tMs: number;
  readonly due: number;
  readonly answered: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

export interface PacedResult {
  readonly offeredPerSec: number;
  readonly connections: number;
  readonly durationMs: number;
  /** Requests the schedule held, and those sent (all, unless a connection failed). */
  readonly due: number;
  readonly sent: number;
  /** Answers that came back inside the scheduled window, per second: the rate the server kept. */
  readonly achievedPerSec: number;
  readonly answered: number;
  /** Requests still unanswered after the drain. */
  readonly unanswered: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  /** From each request's due time to its whole answer. */
  readonly latencyUs: LatencySummary;
  readonly buckets: readonly PacedBucket[];
}

/** mulberry32: a tiny seeded PRNG, so a schedule (or a failing random test case) is the same every time. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Due times in ms from the start: exponential gaps of mean 1000 / rate. */
export function poissonSchedule(ratePerSec: number, durationMs: number, seed: number): number[] {
  const next = seededRandom(seed);
  const times: number[] = [];
  for (let t = -Math.log(1 - next()) * (1000 / ratePerSec); t < durationMs; t += -Math.log(1 - next()) * (1000 / ratePerSec)) times.push(t);
  return times;
}

interface Pending {
  readonly index: number;
  readonly target: string;
  /** Due time, performance.now() clock. */
  readonly dueAt: number;
}

interface Conn {
  readonly socket: net.Socket;
  readonly pending: Pending[];
  buffer: Buffer;
  dead: boolean;
}

const HEAD_END = Buffer.from('\r\n\r\n');

export async function runPacedLoad(options: PacedOptions): Promise<PacedResult> {
  const bucketMs = options.bucketMs ?? 100;
  const schedule = poissonSchedule(options.ratePerSec, options.durationMs, options.seed ?? 1);
  const latencies = new Float64Array(schedule.length).fill(NaN);
  const answeredAt = new Float64Array(schedule.length).fill(NaN);
  const recorder = new LatencyRecorder();
  const changed = new Signal();
  let errors = 0;
  let firstError: string | undefined;
  let outstanding = 0;
  let warm = 0;

  const fail = (conn: Conn, what: string) => {
    if (conn.dead) return;
    conn.dead = true;
    errors += Math.max(1, conn.pending.length);
    firstError ??= what;
    outstanding -= conn.pending.filter((p) => p.index >= 0).length;
    conn.pending.length = 0;
    conn.socket.destroy();
    changed.notify();
  };

  const onData = (conn: Conn, chunk: Buffer) => {
    conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, chunk]) : chunk;
    for (;;) {
      const end = conn.buffer.indexOf(HEAD_END);
      if (end < 0) return;
      const head = conn.buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (conn.buffer.length < end + 4 + length) return;
      const body = conn.buffer.subarray(end + 4, end + 4 + length).toString('latin1');
      conn.buffer = conn.buffer.subarray(end + 4 + length);
      const request = conn.pending.shift();
      if (!request) return fail(conn, 'a response arrived with no request outstanding');
      if (!head.startsWith('HTTP/1.1 200') || body !== request.target) {
        return fail(conn, `request ${request.target} got ${head.split('\r\n')[0]} with body ${JSON.stringify(body.slice(0, 40))}`);
      }
      const now = performance.now();
      if (request.index < 0) warm++;
      else {
        outstanding--;
        latencies[request.index] = (now - request.dueAt) * 1000;
        answeredAt[request.index] = now;
        recorder.record(latencies[request.index]!);
      }
      changed.notify();
    }
  };

  // Step 1: connect and warm up.
  const conns: Conn[] = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const socket = net.connect({ host: options.host, port: options.port });
          socket.once('connect', () => {
            socket.setNoDelay(true);
            const conn: Conn = { socket, pending: [], buffer: Buffer.alloc(0), dead: false };
            socket.on('data', (chunk: Buffer) => onData(conn, chunk));
            socket.on('error', (error: NodeJS.ErrnoException) => fail(conn, `socket: ${error.code ?? error.message}`));
            socket.on('close', () => {
              if (conn.pending.length) fail(conn, 'the server closed a connection with requests outstanding');
              conn.dead = true;
            });
            resolve(conn);
          });
          socket.once('error', reject);
        }),
    ),
  );
  /** False when the connection has failed (the request counts as an error). */
  const send = (conn: Conn, request: Pending): boolean => {
    if (conn.dead) {
      errors++;
      return false;
    }
    conn.pending.push(request);
    conn.socket.write(`GET ${request.target} HTTP/1.1\r\nHost: ${options.host}\r\n\r\n`);
    return true;
  };
  conns.forEach((conn, i) => send(conn, { index: -1, target: `/warm/${i}`, dueAt: performance.now() }));
  const warmDeadline = performance.now() + (options.warmupTimeoutMs ?? 20_000);
  await changed.until(() => warm + errors >= conns.length || performance.now() > warmDeadline, 100);
  if (warm < conns.length) {
    for (const conn of conns) conn.socket.destroy();
    throw new Error(`warm-up: ${warm} of ${conns.length} connections answered (${firstError ?? 'no answer in time'})`);
  }

  // Step 2: the schedule.
  const started = performance.now();
  let next = 0;
  let sent = 0;
  let nextTick = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = performance.now() - started;
      while (nextTick <= now && nextTick <= options.durationMs) {
        options.onTick?.(nextTick);
        nextTick += bucketMs;
      }
      while (next < schedule.length && schedule[next]! <= now) {
        if (send(conns[next % conns.length]!, { index: next, target: `/r/${next}`, dueAt: started + schedule[next]! })) {
          outstanding++;
          sent++;
        }
        next++;
      }
      if (now >= options.durationMs) return resolve();
      const wake = Math.min(schedule[next] ?? options.durationMs, nextTick, options.durationMs);
      setTimeout(pump, Math.max(0, wake - (performance.now() - started)));
    };
    pump();
  });

  // Step 3: drain.
  const drainDeadline = performance.now() + (options.drainTimeoutMs ?? 5_000);
  await changed.until(() => outstanding <= 0 || performance.now() > drainDeadline, 50);

  // Step 4: close.
  for (const conn of conns) {
    conn.dead = true;
    conn.socket.destroy();
  }

  const windowEnd = started + options.durationMs;
  const inWindow = answeredAt.filter((t) => t <= windowEnd).length;
  const answered = latencies.filter((l) => !Number.isNaN(l)).length;
  return {
    offeredPerSec: options.ratePerSec,
    connections: conns.length,
    durationMs: options.durationMs,
    due: schedule.length,
    sent,
    achievedPerSec: inWindow / (options.durationMs / 1000),
    answered,
    unanswered: Math.max(0, outstanding),
    errors,
    firstError,
    latencyUs: recorder.summary(),
    buckets: buckets(schedule, latencies, bucketMs, options.durationMs),
  };
}

function buckets(schedule: readonly number[], latencies: Float64Array, bucketMs: number, durationMs: number): PacedBucket[] {
  const out: PacedBucket[] = [];
  for (let from = 0; from < durationMs; from += bucketMs) {
    const due: number[] = [];
    let count = 0;
    schedule.forEach((t, i) => {
      if (t < from || t >= from + bucketMs) return;
      count++;
      if (!Number.isNaN(latencies[i]!)) due.push(latencies[i]!);
    });
    due.sort((a, b) => a - b);
    const at = (q: number) => (due.length ? Math.round(due[Math.min(due.length - 1, Math.floor(q * due.length))]!) : 0);
    out.push({ tMs: from, due: count, answered: due.length, p50Us: at(0.5), p99Us: at(0.99), maxUs: due.length ? Math.round(due.at(-1)!) : 0 });
  }
  return out;
}
