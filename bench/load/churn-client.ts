/**
 * Connection churn: each client connects, sends one message, waits for its echo, closes, and
 * starts over. Measures how fast a server takes on and lets go of connections (a forking server
 * pays a process start for each one) and how long a new connection waits for its first echo.
 *
 * One cycle, per client:
 *   1. connect (the clock starts here);
 *   2. send one message and read its echo, checking every byte (the clock stops at the last one:
 *      connect-to-first-echo latency);
 *   3. half-close (FIN) and wait for the server's close, so at most `clients` connections are
 *      ever open and a cycle counts only once the server has let go of it.
 * A cycle counts toward connections/s if it ended inside the measured window.
 */

import net from 'node:net';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { MessageSequence } from './payload.js';
import { Signal } from './signal.js';
import { runWindows } from './window.js';


export interface ChurnOptions {
  readonly host: string;
  readonly port: number;
  /** Clients cycling at once. */
  readonly clients: number;
  readonly messageBytes: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Longest warm-up, however slowly the first cycles complete. */
  readonly warmupMaxMs?: number;
  /** A cycle taking longer than this is abandoned and counted as a timeout. */
  readonly cycleTimeoutMs?: number;
  /** Measured windows, back to back after one warm-up; default 1. */
  readonly windows?: number;
  readonly onWindowStart?: (window: number) => void;
  readonly onWindowEnd?: (window: number) => void;
}

export interface ChurnErrors {
  connect: number;
  socket: number;
  corrupt: number;
  /** The server closed before the echo was whole (bytes missing) or sent more than was asked. */
  short: number;
  timeout: number;
}

/** One measured window; its errors include the warm-up's (first window) and those of cycles
 * still finishing after the last window (last window). */
export interface ChurnWindow {
  readonly windowMs: number;
  readonly cycles: number;
  readonly connectionsPerSec: number;
  readonly firstEchoUs: LatencySummary;
  readonly errors: ChurnErrors;
  readonly errorCount: number;
  readonly firstError: string | undefined;
}

export async function runChurn(options: ChurnOptions): Promise<ChurnWindow[]> {
  const cycleTimeoutMs = options.cycleTimeoutMs ?? 10_000;
  const latency = new LatencyRecorder();
  let errors: ChurnErrors = { connect: 0, socket: 0, corrupt: 0, short: 0, timeout: 0 };
  let firstError: string | undefined;
  let measuring = false;
  let stopping = false;
  let cycles = 0;
  /** Cycles completed since the start, warm-up included. */
  let completed = 0;
  const signal = new Signal();
  const warmupMaxMs = Math.max(options.warmupMs, options.warmupMaxMs ?? 20_000);
  let cycleNumber = 0;

  const count = (kind: keyof ChurnErrors, what: string) => {
    errors[kind]++;
    firstError ??= `${kind}: ${what}`;
  };

  /** Runs one cycle; resolves when it is over, whatever happened. */
  const cycle = (client: number) =>
    new Promise<void>((resolve) => {
      const message = Buffer.from(new MessageSequence(client, options.messageBytes).message(cycleNumber++));
      const started = performance.now();
      let connected = false;
      let received = 0;
      let echoedAt = 0;
      let failed = false;
      const socket = net.connect({ host: options.host, port: options.port, allowHalfOpen: true });
      const fail = (kind: keyof ChurnErrors, what: string) => {
        if (failed) return;
        failed = true;
        count(kind, what);
        socket.destroy();
      };
      const timer = setTimeout(() => fail('timeout', `cycle not over within ${cycleTimeoutMs} ms`), cycleTimeoutMs);
      socket.setNoDelay(true);
      socket.once('connect', () => {
        connected = true;
        socket.write(message);
      });
      socket.on('data', (chunk: Buffer) => {
        if (failed) return;
        if (received + chunk.length > message.length) return fail('short', `${received + chunk.length - message.length} bytes beyond the message`);
        if (chunk.compare(message, received, received + chunk.length) !== 0) return fail('corrupt', 'echo differs from the message sent');
        received += chunk.length;
        if (received === message.length) {
          echoedAt = performance.now();
          socket.end();
        }
      });
      socket.on('error', (error: NodeJS.ErrnoException) => fail(connected ? 'socket' : 'connect', error.code ?? error.message));
      socket.once('close', () => {
        clearTimeout(timer);
        if (!failed && received < message.length) count('short', `server closed after ${received} of ${message.length} bytes`);
        else if (!failed) {
          completed++;
          signal.notify();
          if (measuring) {
            cycles++;
            latency.record((echoedAt - started) * 1000);
          }
        }
        resolve();
      });
    });

  const loops = Array.from({ length: options.clients }, async (_, client) => {
    while (!stopping) await cycle(client);
  });

  // Warm-up: at least `warmupMs`, and until as many cycles as clients have completed (a forking
  // server's first cycles all wait for process starts), at most `warmupMaxMs`.
  return runWindows<ChurnWindow>(signal, { minMs: options.warmupMs, maxMs: warmupMaxMs, ready: () => completed >= options.clients }, {
    windows: options.windows ?? 1,
    durationMs: options.durationMs,
    ...(options.onWindowStart ? { onWindowStart: options.onWindowStart } : {}),
    ...(options.onWindowEnd ? { onWindowEnd: options.onWindowEnd } : {}),
    reset() {
      latency.reset();
      cycles = 0;
    },
    begin() {
      measuring = true;
    },
    stop() {
      measuring = false;
    },
    async collect(_w, windowMs, last) {
      // The drain: the cycles still running finish (their errors count in the last window).
      if (last) {
        stopping = true;
        await Promise.all(loops);
      }
      const window: ChurnWindow = {
        windowMs,
        cycles,
        connectionsPerSec: (cycles * 1000) / windowMs,
        firstEchoUs: latency.summary(),
        errors,
        errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
        firstError,
      };
      errors = { connect: 0, socket: 0, corrupt: 0, short: 0, timeout: 0 };
      firstError = undefined;
      return window;
    },
  });
}
