/**
 * Runs an exercise's stages in order against one server command, as CodeCrafters' testers do:
 * each stage has a one-line name and a bound; the first that fails ends the run with the mistake
 * it names; the stages before it have passed again on the way (a change that breaks an earlier
 * lesson is caught there, not later). The server is watched the whole time: an exit the stage did
 * not ask for, or a flood of output, fails the stage at once, and a stage that passes its bound
 * fails with that said. Every process the server started is stopped before `check` returns.
 */

import { constants } from 'node:os';
import { Probe, seconds, StageFailure } from './probe.js';
import { OUTPUT_FLOOD_BYTES, ServerUnderTest } from './server.js';

/** Start-up allowance: a cold `node --import tsx` on a busy 2-core machine can take several seconds. */
export const START_MS = 30_000;

export interface StageContext {
  readonly port: number;
  /** How long the server may take to listen after it starts (START_MS unless the caller says). */
  readonly startMs: number;
  /** The server now running (a stage that restarts it replaces it). */
  readonly server: ServerUnderTest;
  /** A client connected to the server, destroyed when the stage ends. */
  open(timeoutMs?: number): Promise<Probe>;
  /** Starts the server command again on the same port (the old one must have exited). */
  restart(): ServerUnderTest;
}

export interface Stage {
  /** One line: what the server must do. */
  readonly name: string;
  /** How long the whole stage may take before the checker stops waiting. */
  readonly boundMs: number;
  /** The stage itself handles the server's exit (it asks for one, or waits for the start). */
  readonly watchesExit?: boolean;
  run(context: StageContext): Promise<void>;
}

export interface StageResult {
  readonly number: number;
  readonly name: string;
  readonly ms: number;
  /** The mistake, when the stage failed. */
  readonly failure?: string;
}

export interface CheckOptions {
  readonly command: string;
  readonly port: number;
  /** Where the command runs (the repository root). */
  readonly cwd: string;
  /** Run stages 1 to this one only (all when undefined). */
  readonly upTo?: number;
  /** How long the server may take to listen (START_MS by default; the tests' C fixtures start in milliseconds). */
  readonly startMs?: number;
  /** Called as each stage starts and as it ends, for progress lines. */
  readonly onStage?: (event: { readonly stage: number; readonly name: string; readonly result?: StageResult }) => void;
}

export interface CheckReport {
  readonly results: StageResult[];
  /** Every stage asked for passed. */
  readonly passed: boolean;
  /** The end of the server's output, when a stage failed. */
  readonly lastOutput: string;
  /** The process group of each server started (a restart starts another), for tests to see them gone. */
  readonly groups: number[];
}

/** How often the server's health (exit, output) is looked at while a stage runs. */
const WATCH_MS = 50;
/** After a stage failed, how long an exit of the server may take to be seen (a crash closes its sockets first). */
const EXIT_SEEN_MS = 1_000;

export async function check(stages: readonly Stage[], options: CheckOptions): Promise<CheckReport> {
  const probes = new Set<Probe>();
  let server = new ServerUnderTest(options.command, options.port, options.cwd);
  const groups = [server.pgid];
  const context: StageContext = {
    port: options.port,
    startMs: options.startMs ?? START_MS,
    get server() {
      return server;
    },
    open: (timeoutMs = 5_000) => Probe.open(options.port, timeoutMs, probes),
    restart: () => {
      server = new ServerUnderTest(options.command, options.port, options.cwd);
      groups.push(server.pgid);
      return server;
    },
  };
  const results: StageResult[] = [];
  const last = Math.min(stages.length, options.upTo ?? stages.length);
  try {
    for (let index = 0; index < last; index++) {
      const stage = stages[index]!;
      options.onStage?.({ stage: index + 1, name: stage.name });
      const started = performance.now();
      const failure = await runStage(stage, context);
      for (const probe of probes) probe.destroy();
      probes.clear();
      const result: StageResult = { number: index + 1, name: stage.name, ms: performance.now() - started, ...(failure === undefined ? {} : { failure }) };
      results.push(result);
      options.onStage?.({ stage: index + 1, name: stage.name, result });
      if (failure !== undefined) return { results, passed: false, lastOutput: server.lastOutput(), groups };
    }
    return { results, passed: true, lastOutput: '', groups };
  } finally {
    for (const probe of probes) probe.destroy();
    await server.stop();
  }
}

/** One stage, raced against its bound and the server's health: the failure message, or undefined. */
async function runStage(stage: Stage, context: StageContext): Promise<string | undefined> {
  let watch: NodeJS.Timeout | undefined;
  let bound: NodeJS.Timeout | undefined;
  const verdicts: Promise<string | undefined>[] = [
    stage.run(context).then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof StageFailure) return error.message;
        // A bug in the checker: said as loudly as a failure can be, never an unhandled rejection.
        return `the checker itself failed (a bug, please report it): ${error instanceof Error ? error.stack : String(error)}`;
      },
    ),
    new Promise((resolve) => {
      bound = setTimeout(
        () => resolve(`no verdict within ${seconds(stage.boundMs)}: the server stopped answering, and the checker stopped waiting`),
        stage.boundMs,
      );
    }),
    new Promise((resolve) => {
      watch = setInterval(() => {
        const trouble = serverTrouble(context.server, stage.watchesExit === true);
        if (trouble !== undefined) resolve(trouble);
      }, WATCH_MS);
    }),
  ];
  try {
    const failure = await Promise.race(verdicts);
    if (failure === undefined || stage.watchesExit) return failure;
    // A crash shows first as a connection closed under the stage: give the exit a moment to be
    // seen, so the failure says what really happened.
    const deadline = performance.now() + EXIT_SEEN_MS;
    while (!context.server.ending && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const trouble = serverTrouble(context.server, false);
    return trouble === undefined ? failure : `${trouble} (${failure.replace(/: [^:]*\(see [^)]*\)$/, '')})`;
  } finally {
    clearTimeout(bound);
    clearInterval(watch);
  }
}

/** What went wrong with the server itself, if anything: an exit nobody asked for, or a flood. */
function serverTrouble(server: ServerUnderTest, exitExpected: boolean): string | undefined {
  if (server.outputBytes > OUTPUT_FLOOD_BYTES) {
    return `the server wrote over ${OUTPUT_FLOOD_BYTES / 1024 / 1024} MiB to its output during this stage: print a line per client at most, not per read`;
  }
  if (!exitExpected && server.ending && !server.running()) return `the server ${describeEnding(server)} during this stage`;
  return undefined;
}

/** "exited with status 1", "was killed by SIGSEGV". */
export function describeEnding(server: ServerUnderTest): string {
  const ending = server.ending;
  if (!ending) return 'is still running';
  // sh reports a child killed by signal N as its own status 128 + N.
  const signal = ending.signal ?? (ending.code !== null && ending.code > 128 ? signalName(ending.code - 128) : undefined);
  if (signal) return `was killed by ${signal}${signal === 'SIGSEGV' ? ' (a crash: memory used wrongly)' : ''}`;
  return `exited with status ${ending.code}`;
}

/** "SIGSEGV" for 11; undefined for a number that names no signal. */
function signalName(number: number): string | undefined {
  return Object.entries(constants.signals).find(([, value]) => value === number)?.[0];
}
