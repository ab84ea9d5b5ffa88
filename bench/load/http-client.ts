/**
 * HTTP load through autocannon's programmatic API: the tool readers already know, so its numbers
 * can be checked against a plain `autocannon` run.
 *
 * One autocannon run per measurement, on one set of connections, in the same steps as the echo
 * load generator: warm up (at least `warmupMs`, and until every connection has had a response or
 * no new one has for a second: a forking server starts one process per connection first), then
 * measure `windows` windows of `durationMs` back to back (the repeats of a benchmark cell), then
 * stop autocannon. Only responses inside a window count. Errors, timeouts, non-2xx responses and
 * mismatches are counted from autocannon's events, each in the window it falls in (the warm-up's
 * in the first).
 *
 * Added around autocannon: latency goes from its per-response event into our own HDR histogram
 * in microseconds (autocannon's own histogram counts whole milliseconds, which turns every
 * sub-millisecond echo into 0); responses are counted per connection for fairness; and every
 * response body is compared with the request body, so a wrong echo counts as a mismatch.
 */

import autocannon from 'autocannon';
import { LatencyRecorder, type LatencySummary } from './latency.js';
import { Signal } from './signal.js';
import { runWindows, WARMUP_STALL_MS } from './window.js';

export const HTTP_TIMEOUT_S = 30;

export interface HttpLoadOptions {
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  /** Requests each connection sends before waiting for answers; 1 is no pipelining. */
  readonly pipelining: number;
  readonly durationMs: number;
  /** Measured windows, back to back after one warm-up; default 1. */
  readonly windows?: number;
  readonly warmupMs: number;
  readonly warmupMaxMs?: number;
  readonly bodyBytes: number;
  readonly onWindowStart?: (window: number) => void;
  readonly onWindowEnd?: (window: number) => void;
}

/** One measured window. */
export interface HttpWindow {
  readonly windowMs: number;
  /** Responses inside the window. */
  readonly responses: number;
  readonly requestsPerSec: number;
  readonly latencyUs: LatencySummary;
  /** Responses of the least and of the most answered connection inside the window. */
  readonly fewest: number;
  readonly most: number;
  /** Socket errors (not timeouts), requests unanswered for HTTP_TIMEOUT_S, non-2xx, wrong bodies. */
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly mismatches: number;
}

interface Problems {
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
}

export async function runHttpLoad(options: HttpLoadOptions): Promise<HttpWindow[]> {
  const warmupMaxMs = Math.max(options.warmupMs, options.warmupMaxMs ?? 30_000);
  const windowCount = options.windows ?? 1;
  const body = Buffer.alloc(options.bodyBytes, 'abcdefghijklmnopqrstuvwxyz0123456789').toString('latin1');
  const latency = new LatencyRecorder();
  const answered = new Set<object>();
  let perConnection = new Map<object, number>();
  let problems: Problems = { errors: 0, timeouts: 0, non2xx: 0, mismatches: 0 };
  const signal = new Signal();
  let lastFirstAnswer = performance.now();
  let measuring = false;

  let instance: autocannon.Instance | undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: `http://${options.host}:${options.port}/echo`,
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body,
        expectBody: body,
        connections: options.connections,
        pipelining: options.pipelining,
        // Longer than the run could take: we stop it ourselves after the last window.
        duration: (warmupMaxMs + windowCount * options.durationMs) / 1000 + 10,
        // A request unanswered this long counts as a timeout: generous, because a forking server
        // pinned to one core may take this long to start a hundred children.
        timeout: HTTP_TIMEOUT_S,
      },
      (error: unknown, result: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result)),
    );
  });
  const cannon = instance!;
  cannon.on('response', (client: object, status: number, _bytes: number, responseTimeMs: number) => {
    if (!answered.has(client)) {
      answered.add(client);
      lastFirstAnswer = performance.now();
      signal.notify();
    }
    if (status < 200 || status > 299) problems.non2xx++;
    if (!measuring) return;
    latency.record(responseTimeMs * 1000);
    perConnection.set(client, (perConnection.get(client) ?? 0) + 1);
  });
  // autocannon emits these once per request in the pipeline of the connection that failed.
  cannon.on('reqError', (error: Error) => {
    if (error.message === 'request timed out') problems.timeouts += 1 / options.pipelining;
    else problems.errors += 1 / options.pipelining;
  });
  // Not in autocannon's type definitions, but emitted by it (lib/run.js) like reqError.
  (cannon as NodeJS.EventEmitter).on('reqMismatch', () => {
    problems.mismatches += 1 / options.pipelining;
  });

  const windows: HttpWindow[] = [];
  try {
    const warmup = {
      minMs: options.warmupMs,
      maxMs: warmupMaxMs,
      ready: () => answered.size >= options.connections || (answered.size > 0 && performance.now() - lastFirstAnswer >= WARMUP_STALL_MS),
    };
    windows.push(...(await runWindows<HttpWindow>(signal, warmup, {
      windows: windowCount,
      durationMs: options.durationMs,
      ...(options.onWindowStart ? { onWindowStart: options.onWindowStart } : {}),
      ...(options.onWindowEnd ? { onWindowEnd: options.onWindowEnd } : {}),
      reset() {
        latency.reset();
        perConnection = new Map();
      },
      begin() {
        measuring = true;
      },
      stop() {
        measuring = false;
      },
      collect(_w, windowMs, last) {
        // Responses between two windows count in neither; after the last, autocannon is stopped.
        measuring = !last;
        const counts = [...perConnection.values()];
        const summary = latency.summary();
        const window: HttpWindow = {
          windowMs,
          responses: summary.count,
          requestsPerSec: (summary.count * 1000) / windowMs,
          latencyUs: summary,
          fewest: counts.length < options.connections ? 0 : Math.min(...counts),
          most: counts.length ? Math.max(...counts) : 0,
          errors: Math.round(problems.errors),
          timeouts: Math.round(problems.timeouts),
          non2xx: problems.non2xx,
          mismatches: Math.round(problems.mismatches),
        };
        problems = { errors: 0, timeouts: 0, non2xx: 0, mismatches: 0 };
        return window;
      },
    })));
  } finally {
    cannon.stop();
    await finished;
  }
  return windows;
}
