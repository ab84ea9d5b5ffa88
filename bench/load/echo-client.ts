/**
 * The raw-TCP closed-loop load generator for the echo protocol (autocannon speaks only HTTP).
 *
 * Each connection sends one message, waits until every byte of it has come back, checks each
 * byte, records the round trip's latency, and only then sends the next: a closed loop, so the
 * number of messages in flight is exactly the number of connections.
 *
 * A run, in steps:
 *   1. Open every connection.
 *   2. Warm up: ping-pong for at least `warmupMs`, and on until every connection has been
 *      answered once, or some have and no new one has been for a second (a forking server
 *      starts its children during this; a serial server never answers most of them), or
 *      `warmupMaxMs` has passed.
 *   3. Measure `windows` windows of `durationMs` each, back to back on the same connections (the
 *      repeats of a benchmark cell): round trips, latency, fairness and short reads count per
 *      window, and only inside one.
 *   4. Drain: send nothing new and give outstanding replies `drainTimeoutMs` to arrive. A reply
 *      cut short is a missing byte; so is a whole reply lost by a connection that had been
 *      answered before. A connection never answered at all was never served (it waits in the
 *      server's accept queue, as with the serial lab): counted, but not an error.
 *   5. Close every connection.
 *
 * What is checked (every error counts in a window: the warm-up's in the first, the drain's in the
 * last, so the windows' errors add up to the whole run's):
 *   - corrupt: a byte differs from the byte sent at that position of the sequence;
 *   - extra:   a byte arrives when the whole outstanding message has already come back;
 *   - missing: the reply stops short (see step 4), or the server closes with a reply owed;
 *   - connect, socket: the connection could not be made, or failed (a reset).
 * A connection with an error is closed at once; the others carry on.
 *
 * Short reads: TCP is a byte stream, so one reply may arrive over several reads. A read after
 * which the reply is still incomplete is a short read; the loop simply keeps reading.
 */

import net from 'node:net';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { MessageSequence } from './payload.js';
import { Signal } from './signal.js';
import { runWindows } from './window.js';

/**
 * Warm-up stops waiting for connections still unanswered after no new one was answered for this
 * long: long enough for a forking server's next child to start on a busy machine.
 */
export const WARMUP_STALL_MS = 1_000;

export interface EchoLoadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly messageBytes: number;
  /** Length of each measured window. */
  readonly durationMs: number;
  /** Measured windows, back to back after one warm-up; default 1. */
  readonly windows?: number;
  /** Least warm-up before the window (step 2); 0 skips it and measures from the first message. */
  readonly warmupMs?: number;
  /** Longest warm-up, however slowly connections are first answered. */
  readonly warmupMaxMs?: number;
  /** Ends a connection's part of each window after this many round trips (tests use it). */
  readonly roundTripsPerConnection?: number;
  /** How long outstanding replies get after the window (step 4). */
  readonly drainTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Called as each measured window opens and closes, for samplers that must cover exactly it. */
  readonly onWindowStart?: (window: number) => void;
  readonly onWindowEnd?: (window: number) => void;
  /** Sees every read, before it is checked; a test server uses it to pace split replies. */
  readonly onRead?: (connection: number, bytes: number) => void;
}

export interface EchoErrors {
  connect: number;
  socket: number;
  corrupt: number;
  extra: number;
  missing: number;
}

/** One measured window. */
export interface EchoWindow {
  readonly windowMs: number;
  /** Round trips completed inside the window. */
  readonly roundTrips: number;
  readonly roundTripsPerSec: number;
  readonly latencyUs: LatencySummary;
  /** Round trips each connection completed inside the window, by connection number. */
  readonly perConnection: readonly number[];
  readonly fewest: number;
  readonly most: number;
  readonly shortReads: number;
  /** Connections not answered even once by the window's end (not an error: see step 4). */
  readonly neverAnswered: number;
  readonly errors: EchoErrors;
  readonly errorCount: number;
}

export interface EchoLoadResult {
  readonly connections: number;
  /** Connections that opened. */
  readonly connected: number;
  readonly messageBytes: number;
  readonly windows: readonly EchoWindow[];
  /** Over the whole run: the sum of the windows' errors. */
  readonly errors: EchoErrors;
  readonly errorCount: number;
  /** The first error's description, for the report's notes. */
  readonly firstError: string | undefined;
}

interface Conn {
  readonly index: number;
  readonly socket: net.Socket;
  readonly sequence: MessageSequence;
  /** The message whose echo is awaited, or undefined between messages. */
  outstanding: Buffer | undefined;
  received: number;
  sentAt: number;
  seq: number;
  answeredEver: number;
  windowRoundTrips: number;
  failed: boolean;
  closed: Promise<void>;
}

export async function runEchoLoad(options: EchoLoadOptions): Promise<EchoLoadResult> {
  const warmupMs = options.warmupMs ?? 0;
  const warmupMaxMs = Math.max(warmupMs, options.warmupMaxMs ?? 10_000);
  const drainTimeoutMs = options.drainTimeoutMs ?? 1_000;
  const limit = options.roundTripsPerConnection ?? Infinity;
  const latency = new LatencyRecorder();
  const errors: EchoErrors = { connect: 0, socket: 0, corrupt: 0, extra: 0, missing: 0 };
  let firstError: string | undefined;
  let phase: 'warmup' | 'window' | 'drain' | 'closing' = 'warmup';
  let shortReads = 0;
  const windowCount = options.windows ?? 1;
  const windows: EchoWindow[] = [];
  let lastFirstAnswerAt = performance.now();
  const changed = new Signal();

  const fail = (conn: Conn | undefined, kind: keyof EchoErrors, what: string) => {
    errors[kind]++;
    firstError ??= `${kind}: ${what}${conn ? ` (connection ${conn.index})` : ''}`;
    if (conn) {
      conn.failed = true;
      conn.outstanding = undefined;
      conn.socket.destroy();
    }
    changed.notify();
  };

  // Step 1: open every connection.
  const opened = await Promise.all(
    Array.from({ length: options.connections }, (_, index) => openConnection(options, index)),
  );
  const conns: Conn[] = [];
  for (const result of opened) {
    if ('error' in result) fail(undefined, 'connect', result.error);
    else conns.push(setUp(result.index, result.socket));
  }

  function setUp(index: number, socket: net.Socket): Conn {
    const conn: Conn = {
      index,
      socket,
      sequence: new MessageSequence(index, options.messageBytes),
      outstanding: undefined,
      received: 0,
      sentAt: 0,
      seq: 0,
      answeredEver: 0,
      windowRoundTrips: 0,
      failed: false,
      // The socket may have closed while the other connections were still opening.
      closed: socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve())),
    };
    if (socket.destroyed) fail(conn, 'socket', 'closed before the run began');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => onData(conn, chunk));
    socket.on('end', () => {
      if (phase !== 'closing' && !conn.failed && conn.outstanding) {
        fail(conn, 'missing', `server closed with ${conn.outstanding.length - conn.received} bytes of a reply owed`);
      } else if (phase !== 'closing' && !conn.failed) {
        fail(conn, 'socket', 'server closed the connection');
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (phase !== 'closing' && !conn.failed) fail(conn, 'socket', error.code ?? error.message);
    });
    return conn;
  }

  function send(conn: Conn): void {
    if (conn.failed || phase === 'drain' || phase === 'closing') return;
    if (phase === 'window' && conn.windowRoundTrips >= limit) return;
    conn.outstanding = conn.sequence.message(conn.seq++);
    conn.received = 0;
    conn.sentAt = performance.now();
    conn.socket.write(conn.outstanding);
  }

  function onData(conn: Conn, chunk: Buffer): void {
    options.onRead?.(conn.index, chunk.length);
    if (conn.failed || phase === 'closing') return;
    const expected = conn.outstanding;
    if (!expected) return fail(conn, 'extra', `${chunk.length} bytes arrived with no message outstanding`);
    const take = Math.min(expected.length - conn.received, chunk.length);
    if (chunk.compare(expected, conn.received, conn.received + take, 0, take) !== 0) {
      const at = firstDifference(chunk, expected, conn.received, take);
      return fail(conn, 'corrupt', `byte ${at} of message ${conn.seq - 1} is ${chunk[at - conn.received]}, sent ${expected[at]}`);
    }
    conn.received += take;
    if (take < chunk.length) {
      return fail(conn, 'extra', `${chunk.length - take} bytes beyond the ${expected.length}-byte message ${conn.seq - 1}`);
    }
    if (conn.received < expected.length) {
      if (phase === 'window') shortReads++;
      return;
    }
    // A whole reply: one round trip.
    conn.outstanding = undefined;
    if (conn.answeredEver++ === 0) {
      lastFirstAnswerAt = performance.now();
      changed.notify();
    }
    if (phase === 'window') {
      latency.record((performance.now() - conn.sentAt) * 1000);
      conn.windowRoundTrips++;
      if (conn.windowRoundTrips >= limit) changed.notify();
    }
    if (phase === 'drain') changed.notify();
    send(conn);
  }

  const live = () => conns.filter((c) => !c.failed);
  try {
    // Step 2: warm up.
    for (const conn of conns) send(conn);
    const warmup = warmupMs > 0 && {
      minMs: warmupMs,
      maxMs: warmupMaxMs,
      ready: () => {
        // Nobody answered yet: keep waiting (a forking server may still be starting its children).
        if (!live().some((c) => c.answeredEver > 0)) return false;
        return live().every((c) => c.answeredEver > 0) || performance.now() - lastFirstAnswerAt >= WARMUP_STALL_MS;
      },
    };

    // Step 3: measure, window after window (step 4, the drain, ends the last one).
    let errorsBefore: EchoErrors = { connect: 0, socket: 0, corrupt: 0, extra: 0, missing: 0 };
    windows.push(...(await runWindows<EchoWindow>(changed, warmup || undefined, {
      windows: windowCount,
      durationMs: options.durationMs,
      ...(options.onWindowStart ? { onWindowStart: options.onWindowStart } : {}),
      ...(options.onWindowEnd ? { onWindowEnd: options.onWindowEnd } : {}),
      reset() {
        phase = 'window';
        latency.reset();
        shortReads = 0;
        for (const conn of conns) conn.windowRoundTrips = 0;
      },
      begin() {
        // Connections between messages (answered with nothing sent since: the warm-up's last reply,
        // or a round-trip limit reached in the window before) start again here.
        for (const conn of live()) if (!conn.outstanding) send(conn);
      },
      finished: () => live().every((c) => c.windowRoundTrips >= limit),
      stop(_w, last) {
        if (last) phase = 'drain';
      },
      async collect(_w, windowMs, last) {
        if (last) await drain();
        const perConnection = Array.from({ length: options.connections }, () => 0);
        for (const conn of conns) perConnection[conn.index] = conn.windowRoundTrips;
        const roundTrips = perConnection.reduce((a, b) => a + b, 0);
        const windowErrors = subtract(errors, errorsBefore);
        errorsBefore = { ...errors };
        return {
          windowMs,
          roundTrips,
          roundTripsPerSec: windowMs > 0 ? (roundTrips * 1000) / windowMs : 0,
          latencyUs: latency.summary(),
          perConnection,
          fewest: Math.min(...perConnection),
          most: Math.max(...perConnection),
          shortReads,
          neverAnswered: conns.filter((c) => c.answeredEver === 0).length + (options.connections - conns.length),
          errors: windowErrors,
          errorCount: total(windowErrors),
        };
      },
    })));
  } finally {
    // Step 5: close.
    phase = 'closing';
    changed.stop();
    for (const conn of conns) conn.socket.destroy();
    await Promise.all(conns.map((c) => c.closed));
  }

  return {
    connections: options.connections,
    connected: conns.length,
    messageBytes: options.messageBytes,
    windows,
    errors,
    errorCount: total(errors),
    firstError,
  };

  /** Step 4. Connections never answered are not waited for: they are queued, not slow. */
  async function drain(): Promise<void> {
    const drainStart = performance.now();
    await changed.until(
      () => live().every((c) => !c.outstanding || c.answeredEver === 0) || performance.now() - drainStart >= drainTimeoutMs,
      Math.min(drainTimeoutMs, 50),
    );
    for (const conn of live()) {
      if (!conn.outstanding) continue;
      if (conn.received > 0) {
        fail(conn, 'missing', `reply to message ${conn.seq - 1} stopped at ${conn.received} of ${conn.outstanding.length} bytes`);
      } else if (conn.answeredEver > 0) {
        fail(conn, 'missing', `no reply to message ${conn.seq - 1} within ${drainTimeoutMs} ms`);
      }
    }
  }
}

const total = (errors: EchoErrors) => Object.values(errors).reduce((a, b) => a + b, 0);

function subtract(now: EchoErrors, before: EchoErrors): EchoErrors {
  return {
    connect: now.connect - before.connect,
    socket: now.socket - before.socket,
    corrupt: now.corrupt - before.corrupt,
    extra: now.extra - before.extra,
    missing: now.missing - before.missing,
  };
}

function firstDifference(chunk: Buffer, expected: Buffer, offset: number, length: number): number {
  for (let i = 0; i < length; i++) if (chunk[i] !== expected[offset + i]) return offset + i;
  return offset;
}

/** Opens one connection, or says why it could not. */
export function openConnection(
  options: { host: string; port: number; connectTimeoutMs?: number },
  index: number,
): Promise<{ index: number; socket: net.Socket } | { index: number; error: string }> {
  const timeoutMs = options.connectTimeoutMs ?? 5_000;
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ index, error: `no connection within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve({ index, socket });
    });
    // Stays attached after the connect, so an error before the caller listens cannot go unheard.
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ index, error: error.code ?? error.message });
    });
  });
}
