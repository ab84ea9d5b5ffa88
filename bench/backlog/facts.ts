/**
 * The numbers the report's sentences are made of, computed from a RunResult. Every claim the
 * report makes about a run comes from here, so re-rendering old JSON can never disagree with it.
 */

import type { ClientRecord, RunResult, WaitPlace } from './results.js';

export interface RunFacts {
  readonly holder: ClientRecord | undefined;
  readonly others: readonly ClientRecord[];
  /** Client 1 connected .. began to close. */
  readonly holdFromMs: number | undefined;
  readonly holdToMs: number | undefined;
  /** Deepest accept queue sampled while client 1 held, and over the whole run. */
  readonly maxDepthWhileHeld: number;
  readonly maxDepth: number;
  readonly samplesWhileHeld: number;
  readonly listenOverflows: number;
  readonly listenDrops: number;
  readonly maxProcesses: number;
  /** Clients 2..K by where they waited (a client may count under several places). */
  readonly waitedIn: Readonly<Record<WaitPlace, readonly ClientRecord[]>>;
  readonly waitedNowhere: readonly ClientRecord[];
  readonly failed: readonly ClientRecord[];
  /** First echo minus connect, over clients 2..K that got one. */
  readonly echoAfterConnectMs: readonly number[];
  /** First echo minus start (what the client experienced), over clients 2..K that got one. */
  readonly echoAfterStartMs: readonly number[];
  /** Connect minus start, over clients 2..K that connected. */
  readonly connectTookMs: readonly number[];
  /** Clients 2..K whose first echo came before client 1 began to close. */
  readonly echoedWhileHeld: readonly ClientRecord[];
  /** Clients 2..K echoed in the order they started. */
  readonly servedInArrivalOrder: boolean;
}

export function runFacts(run: RunResult): RunFacts {
  const holder = run.clients[0];
  const others = run.clients.slice(1);
  const holdFromMs = holder?.connectMs;
  const holdToMs = holder?.closeMs;
  const held = run.samples.filter((s) => holdFromMs !== undefined && holdToMs !== undefined && s.t >= holdFromMs && s.t <= holdToMs);
  const last = run.samples.at(-1);
  const places: WaitPlace[] = ['syn-retransmit', 'final-ack-dropped', 'accept-queue', 'user-space', 'unobserved'];
  const waitedIn = Object.fromEntries(places.map((p) => [p, others.filter((c) => c.waits.some((w) => w.where === p))])) as Record<WaitPlace, ClientRecord[]>;
  const echoed = others.filter((c) => c.firstEchoMs !== undefined);
  const byEcho = [...echoed].sort((a, b) => a.firstEchoMs! - b.firstEchoMs!);
  return {
    holder,
    others,
    holdFromMs,
    holdToMs,
    maxDepthWhileHeld: Math.max(0, ...held.map((s) => s.acceptQueueDepth)),
    maxDepth: Math.max(0, ...run.samples.map((s) => s.acceptQueueDepth)),
    samplesWhileHeld: held.length,
    listenOverflows: last?.listenOverflows ?? 0,
    listenDrops: last?.listenDrops ?? 0,
    maxProcesses: Math.max(0, ...run.samples.map((s) => s.processes)),
    waitedIn,
    waitedNowhere: others.filter((c) => c.waits.length === 0 && c.outcome === 'served'),
    failed: run.clients.filter((c) => c.outcome !== 'served'),
    echoAfterConnectMs: echoed.filter((c) => c.connectMs !== undefined).map((c) => c.firstEchoMs! - c.connectMs!),
    echoAfterStartMs: echoed.map((c) => c.firstEchoMs! - c.startMs),
    connectTookMs: others.filter((c) => c.connectMs !== undefined).map((c) => c.connectMs! - c.startMs),
    echoedWhileHeld: echoed.filter((c) => holdToMs === undefined || c.firstEchoMs! < holdToMs),
    servedInArrivalOrder: byEcho.every((c, i) => i === 0 || c.client > byEcho[i - 1]!.client),
  };
}

export const min = (xs: readonly number[]): number | undefined => (xs.length ? Math.min(...xs) : undefined);
export const max = (xs: readonly number[]): number | undefined => (xs.length ? Math.max(...xs) : undefined);
