/**
 * The C raw-echo load generator (bench/load/c-echo-client.c) from TypeScript: build it, run it
 * (pinned to a core if asked), and hand back its JSON report checked field by field.
 *
 * Why it exists: the TypeScript client it replaced spent more CPU per round trip than the C
 * reference server, so against a fast server it measured itself. A load generator must cost less
 * per round trip than the server it measures; this one is a single C epoll loop, about half
 * that client's cost. It costs as much as the C reference itself (the same two system calls per round
 * trip; see the header of c-echo-client.c), so that pair saturates together.
 *
 * The promise rejects, never resolves with a doubtful figure, when:
 *   - the binary cannot be built (no `cc`: the builder's reason is the message);
 *   - it exits with a status other than 0 (usage errors, a crash), with its stderr;
 *   - it found errors in the echo (a wrong, missing or extra byte, a refused or reset
 *     connection): a CEchoErrors, which carries the whole report for whoever wants the details;
 *   - its output is not the documented JSON (a field missing or of the wrong type).
 */

import { spawn } from 'node:child_process';
import { buildCEchoClient, C_ECHO_CLIENT_BINARY } from '../reference/build.js';
import { hasTaskset } from '../../harness/affinity.js';
import { flags, lastLines, runCTool, type WindowCallbacks } from './c-tool.js';

/** The window callbacks: when the client says the measured window opened and closed. */
export interface CEchoOptions extends WindowCallbacks {
  readonly host?: string;
  readonly port: number;
  readonly connections: number;
  /** Bytes per message. */
  readonly size: number;
  /** Messages in flight per connection; 1 (the default) is the closed loop echo.ts runs. */
  readonly pipeline?: number;
  /** Least warm-up; it then goes on until every connection has been answered once (or stalls). */
  readonly warmupSeconds: number;
  /** Longest warm-up; the default is warmupSeconds, a warm-up of exactly that long. */
  readonly warmupMaxSeconds?: number;
  /** Warm-up stops waiting for the unanswered once no new connection was answered for this long; default 1 s. */
  readonly warmupStallSeconds?: number;
  readonly seconds: number;
  /** How long outstanding replies get after the window; the client's default is 1 s. */
  readonly drainSeconds?: number;
  /** Ends each connection's part of the window after this many round trips (tests use it). */
  readonly roundTripsPerConnection?: number;
  /** Runs the client under `taskset --cpu-list CPUS`, e.g. "0" (see harness/affinity.ts). */
  readonly cpus?: string;
  /** Spread the connections over this many loopback source addresses, 127.0.0.2 and up (sources.ts); 0 or none: the kernel's choice. */
  readonly sources?: number;
}

export interface CEchoLatency {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Bound on how far above the true value a reported percentile may be (0.0078 = 0.78%). */
  readonly relativeError: number;
}

export interface CEchoErrorCounts {
  readonly connect: number;
  readonly socket: number;
  readonly corrupt: number;
  readonly extra: number;
  readonly missing: number;
  readonly total: number;
}

export interface CEchoErrorReport {
  readonly kind: 'connect' | 'socket' | 'corrupt' | 'extra' | 'missing';
  readonly connection: number;
  /** The message it concerns, or -1. */
  readonly message: number;
  /** Byte offset inside that message, or -1. */
  readonly offset: number;
  readonly detail: string;
}

/** The client's report, as documented in the header of c-echo-client.c. */
/** What both modes' reports open with. */
interface CEchoHeader {
  readonly tool: 'c-echo-client';
  readonly version: 3;
  readonly host: string;
  readonly port: number;
  readonly connections: number;
  readonly size: number;
  /** Source addresses the connections were spread over (0: the kernel chose 127.0.0.1). */
  readonly sources: number;
  /** Connections whose connect was started. */
  readonly opened: number;
  readonly connected: number;
  readonly errors: CEchoErrorCounts;
  readonly firstErrors: readonly CEchoErrorReport[];
}

export interface CEchoResult extends CEchoHeader {
  readonly mode: 'run';
  readonly pipeline: number;
  readonly warmupS: number;
  readonly warmupMaxS: number;
  readonly warmupTookS: number;
  /** What ended the warm-up: every connection answered once, none newly for the stall time, the bound, or every connection failed. */
  readonly warmupEnd: 'answered' | 'stalled' | 'bound' | 'failed';
  /** Connections answered at least once before the window opened. */
  readonly answeredInWarmup: number;
  /** Round trips completed in the warm-up, over every connection. */
  readonly warmupRoundTrips: number;
  readonly windowS: number;
  readonly roundTrips: number;
  readonly roundTripsPerSec: number;
  readonly latencyUs: CEchoLatency;
  readonly perConnection: readonly number[];
  readonly fewest: number;
  readonly most: number;
  readonly neverAnswered: number;
  readonly shortReads: number;
  readonly shortWrites: number;
  /** The client's own CPU over the window; fraction is of one core. */
  readonly cpu: { readonly userS: number; readonly sysS: number; readonly fraction: number };
}

/** The client ran to the end and found the server's echo wrong (or connections failing). */
export class CEchoErrors extends Error {
  override readonly name = 'CEchoErrors';
  constructor(readonly result: CEchoResult) {
    const first = result.firstErrors[0];
    super(
      `c-echo-client found ${result.errors.total} error(s)` +
        (first ? `; first: ${first.kind} on connection ${first.connection}: ${first.detail}` : ''),
    );
  }
}

/** Beyond warm-up + window + drain: connecting, starting and the 100 ms grace, on a busy machine. */
const EXIT_MARGIN_MS = 30_000;

export async function runCEchoClient(options: CEchoOptions): Promise<CEchoResult> {
  const [file, argv] = command(options, flags({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    connections: options.connections,
    size: options.size,
    pipeline: options.pipeline ?? 1,
    warmup: options.warmupSeconds,
    'warmup-max': options.warmupMaxSeconds,
    'warmup-stall': options.warmupStallSeconds,
    seconds: options.seconds,
    drain: options.drainSeconds,
    'round-trips': options.roundTripsPerConnection,
    sources: options.sources || undefined,
  }));
  const deadlineMs = (Math.max(options.warmupSeconds, options.warmupMaxSeconds ?? 0) + options.seconds + (options.drainSeconds ?? 1)) * 1000 + EXIT_MARGIN_MS;

  const { code, stdout } = await runCTool('c-echo-client', file, argv, deadlineMs, options);
  const result = parseResult(stdout, options);
  // Status 1 means "finished, found errors"; 0 with errors counted would be a bug in the client.
  if (result.errors.total > 0 || code === 1) {
    if (result.errors.total === 0) throw new Error('c-echo-client exited with status 1 but reports no errors');
    throw new CEchoErrors(result);
  }
  return result;
}

/** The binary (built if needed) and its arguments, under taskset when asked: taskset execs the client, so the child's pid is the client's own. */
function command(options: Pick<CEchoOptions, 'cpus'>, args: string[]): [string, string[]] {
  const unavailable = buildCEchoClient();
  if (unavailable !== undefined) throw new Error(unavailable);
  if (options.cpus === undefined) return [C_ECHO_CLIENT_BINARY, args];
  if (!hasTaskset()) throw new Error(`cannot pin the C load generator to cores ${options.cpus}: no taskset(1)`);
  return ['taskset', ['--cpu-list', options.cpus, C_ECHO_CLIENT_BINARY, ...args]];
}

/**
 * The report, every field checked for presence and type, and against what was asked: a wrong
 * field fails loudly here instead of as a NaN in a table.
 */
export function parseResult(stdout: string, asked: Pick<CEchoOptions, 'connections' | 'size'>): CEchoResult {
  const { raw, top, bad, object, number } = schema(stdout, 'run');
  if (!['answered', 'stalled', 'bound', 'failed'].includes(top.warmupEnd as string)) bad(`warmupEnd is ${JSON.stringify(top.warmupEnd)}`);
  for (const key of ['pipeline', 'roundTrips', 'fewest', 'most', 'neverAnswered', 'shortReads', 'shortWrites', 'answeredInWarmup', 'warmupRoundTrips']) {
    number(top, key, '', true);
  }
  for (const key of ['warmupS', 'warmupMaxS', 'warmupTookS', 'windowS', 'roundTripsPerSec']) number(top, key, '');
  const latency = object(top.latencyUs, 'latencyUs');
  for (const key of ['min', 'mean', 'p50', 'p90', 'p99', 'p999', 'max', 'relativeError']) number(latency, key, 'latencyUs.');
  number(latency, 'count', 'latencyUs.', true);
  const cpu = object(top.cpu, 'cpu');
  for (const key of ['userS', 'sysS', 'fraction']) number(cpu, key, 'cpu.');
  const perConnection = top.perConnection;
  if (!Array.isArray(perConnection) || !perConnection.every((n) => Number.isInteger(n) && n >= 0)) bad('perConnection is not a list of counts');

  const result = raw as CEchoResult;
  // What the numbers must agree on among themselves and with what was asked.
  if (result.connections !== asked.connections || result.size !== asked.size) {
    bad(`it ran ${result.connections} × ${result.size} B, asked ${asked.connections} × ${asked.size} B`);
  }
  if (result.perConnection.length !== result.connections) bad(`perConnection has ${result.perConnection.length} entries for ${result.connections} connections`);
  const sum = result.perConnection.reduce((a, b) => a + b, 0);
  if (sum !== result.roundTrips) bad(`perConnection adds up to ${sum}, roundTrips is ${result.roundTrips}`);
  if (result.fewest !== Math.min(...result.perConnection) || result.most !== Math.max(...result.perConnection)) {
    bad(`fewest/most ${result.fewest}/${result.most} are not perConnection's least and most`);
  }
  if (result.latencyUs.count !== result.roundTrips) bad(`latencyUs.count ${result.latencyUs.count} differs from roundTrips ${result.roundTrips}`);
  return result;
}

/** The checks both reports share: JSON, the header's typed fields, and the errors block adding up. */
function schema(stdout: string, mode: 'run' | 'hold') {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch {
    throw new Error(`c-echo-client output is not JSON: ${stdout.slice(0, 200) || '(empty)'}`);
  }
  const bad = (what: string): never => {
    throw new Error(`c-echo-client output does not match its schema: ${what}`);
  };
  const object = (value: unknown, where: string): Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : bad(`${where} is not an object`);
  const number = (from: Record<string, unknown>, key: string, where: string, integer = false): number => {
    const value = from[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
      return bad(`${where}${key} is ${JSON.stringify(value)}, expected ${integer ? 'an integer' : 'a number'}`);
    }
    return value;
  };
  const top = object(raw, 'the output');
  if (top.tool !== 'c-echo-client' || top.version !== 3 || top.mode !== mode) bad(`tool/version/mode is ${String(top.tool)}/${String(top.version)}/${String(top.mode)}, expected c-echo-client/3/${mode}`);
  if (typeof top.host !== 'string') bad('host is not a string');
  for (const key of ['port', 'connections', 'size', 'sources', 'opened', 'connected']) number(top, key, '', true);
  const errors = object(top.errors, 'errors');
  const counts = ['connect', 'socket', 'corrupt', 'extra', 'missing'].map((key) => number(errors, key, 'errors.', true));
  if (counts.reduce((a, b) => a + b, 0) !== number(errors, 'total', 'errors.', true)) bad('errors.total is not the sum of the error counts');
  if (!Array.isArray(top.firstErrors)) bad('firstErrors is not a list');
  for (const [i, entry] of (top.firstErrors as unknown[]).entries()) {
    const e = object(entry, `firstErrors[${i}]`);
    if (!['connect', 'socket', 'corrupt', 'extra', 'missing'].includes(e.kind as string)) bad(`firstErrors[${i}].kind is ${String(e.kind)}`);
    for (const key of ['connection', 'message', 'offset']) number(e, key, `firstErrors[${i}].`, true);
    if (typeof e.detail !== 'string') bad(`firstErrors[${i}].detail is not a string`);
  }
  return { raw, top, bad, object, number };
}

/* ---- Holding idle connections (--hold) ------------------------------------------------------ */

export interface CHoldOptions {
  readonly host?: string;
  readonly port: number;
  readonly connections: number;
  /** Loopback source addresses to spread them over (sources.ts); 0: the kernel's choice. */
  readonly sources: number;
  /** The opening ends once no new connection has been answered for this long... */
  readonly stallSeconds: number;
  /** ...or after this long, answered or not. */
  readonly maxSeconds: number;
  readonly cpus?: string;
}

/** The holder's report as the holding starts (the header of c-echo-client.c, "mode":"hold"). */
export interface CHoldReport extends CEchoHeader {
  readonly mode: 'hold';
  /** Connections whose one echo came back whole: the ones really held. */
  readonly answered: number;
  /** From the first connect to the end of the opening. */
  readonly openS: number;
  readonly openEnd: 'answered' | 'stalled' | 'bound' | 'failed';
}

export interface CHold {
  readonly report: CHoldReport;
  readonly pid: number;
  /** Lets go: the holder resets every connection and exits; resolves once it has. */
  close(): Promise<void>;
}

/** Bytes of each connection's one probe: small, as the capacity scenario's. */
const HOLD_PROBE_BYTES = 8;
/** How long the holder gets to reset a hundred thousand connections and exit before SIGKILL. */
const HOLD_EXIT_MS = 30_000;

/**
 * Opens `connections` connections through the C client, each echoing one message, and holds
 * them idle until `close()`. The holder also lets go if this process dies (its stdin closes).
 * Resolves once the opening has ended, whatever it reached: the caller reads `answered`.
 */
export async function holdCEchoConnections(options: CHoldOptions): Promise<CHold> {
  const [file, argv] = command(options, flags({
    host: options.host ?? '127.0.0.1',
    port: options.port,
    connections: options.connections,
    size: HOLD_PROBE_BYTES,
    warmup: 0,
    'warmup-max': options.maxSeconds,
    'warmup-stall': options.stallSeconds,
    sources: options.sources,
    hold: true,
  }));
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  // The last lines only: a level the server refuses prints a line per failed connection.
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  const stdout = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`c-echo-client --hold printed no report within ${options.maxSeconds} s and a margin: ${lastLines(stderr)}`));
    }, options.maxSeconds * 1000 + EXIT_MARGIN_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${file}: ${error.message}`));
    });
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.split('\n')[0]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`c-echo-client --hold ended before its report (${signal ?? `status ${code}`}): ${lastLines(stderr)}`));
    });
  });
  let report: CHoldReport;
  try {
    report = parseHold(stdout, options);
  } catch (error) {
    kill();
    throw error;
  }
  return {
    report,
    pid: child.pid!,
    async close() {
      child.stdin.end();
      const timer = setTimeout(kill, HOLD_EXIT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The hold report, every field checked, and its counts against each other and what was asked. */
export function parseHold(stdout: string, asked: Pick<CHoldOptions, 'connections' | 'sources'>): CHoldReport {
  const { raw, top, bad, number } = schema(stdout, 'hold');
  if (!['answered', 'stalled', 'bound', 'failed'].includes(top.openEnd as string)) bad(`openEnd is ${JSON.stringify(top.openEnd)}`);
  number(top, 'answered', '', true);
  number(top, 'openS', '');
  const report = raw as CHoldReport;
  if (report.connections !== asked.connections || report.sources !== asked.sources) {
    bad(`it held ${report.connections} over ${report.sources} sources, asked ${asked.connections} over ${asked.sources}`);
  }
  if (!(report.answered <= report.connected && report.connected <= report.opened && report.opened <= report.connections)) {
    bad(`answered ${report.answered} ≤ connected ${report.connected} ≤ opened ${report.opened} ≤ connections ${report.connections} does not hold`);
  }
  return report;
}
