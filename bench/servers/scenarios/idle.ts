/**
 * Scenario 2, idle connections beside a busy one (C10K, and on to 100,000): hold N idle
 * connections while one busy connection ping-pongs 64 B, and weigh what each busy round trip
 * costs the server, and what each idle connection costs the server and the kernel. A loop that
 * asks the kernel about every descriptor on every wake-up (poll) pays for the idle ones on each
 * round trip; one that keeps an interest list in the kernel (epoll) should not. At 100,000 the
 * memory of a connection, most of it the kernel's, is the lesson: what would a million need?
 *
 * For each server (one fresh server for all levels, in increasing order):
 *   1. check the level can be tried: descriptors (ours, the server's, the machine's), ephemeral
 *      ports (how many loopback source addresses it takes), conntrack's table, and memory (a
 *      budget per connection, or twice what the level before measured) against what is free; if
 *      not, the row says why and the server's later levels are not attempted;
 *   2. sample the kernel (observe/kernel.ts), then open N idle connections through the C load
 *      generator's holder (load/c-client.ts, --hold: 500 handshakes in flight, spread over
 *      127.0.0.2 and up), each echoing 8 bytes once; a level with any connection unanswered is
 *      one the server cannot hold, and its later levels are not attempted;
 *   3. sample the kernel and the server's RSS again: per connection (bench/per-connection.ts);
 *   4. run the C load generator on the busy connection, one run per repeat, sampling the
 *      server's CPU over its window;
 *   5. let the holder go (it resets every connection) and wait until the server is quiet again.
 *
 * Descriptors: N idle connections cost N descriptors in the holder and N in the server. Before a
 * server starts, the harness raises its own open-file limit (prlimit, soft and hard) to the most
 * it needs; the server and the holder inherit it; it is put back when the server has stopped. The
 * report states both limits.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { holdCEchoConnections, type CHold } from '../../load/c-client.js';
import { connectionsPerSource, ephemeralPortRange, sourcesFor, type PortRange } from '../../load/sources.js';
import { conntrack, kernelSample, memTotalBytes, pageSize, sysctlNumber, type Conntrack } from '../../../harness/kernel.js';
import { memAvailableBytes, openFileLimit, treeUsage } from '../../../harness/processes.js';
import { perConnection } from '../per-connection.js';
import { PLAIN_NODE_ID, type Metrics } from '../results.js';
import { CannotReach, runCellsOnOneServer, type Scenario } from '../run.js';
import type { TargetSpec } from '../targets.js';
import { cannotMeasure, cClientUnavailable, cClientWindows } from './c-load.js';
import { firstVariant, idleVariants } from './variants.js';

/** Busy connections' message size: small, so the loop, not the copy, is the cost. */
const MESSAGE_BYTES = 64;
/** Descriptors a process needs besides its connections (stdio, epoll, pipes, the listener, the busy ones). */
const FD_HEADROOM = 256;
/** The opening ends once no connection has been newly answered for this long: the server has stopped taking them. */
const OPEN_STALL_S = 5;
/**
 * The opening's bound: 30 s plus one second per 500 connections. A server that answers fewer
 * than 500 new connections a second (a tenth of what the labs manage on a busy 2-core machine)
 * does not reach the level within the run's time, and the row says so.
 */
const openBoundS = (n: number) => 30 + n / 500;
/** Loopback handshakes a second the holder achieves, for the time estimate only. */
const HANDSHAKES_PER_S = 4000;
/**
 * Memory a level may take, per connection, before the first level is measured: the server's own
 * (up to about 8 KiB in the Node labs), the kernel's for both ends (about 8 KiB), and the holder's
 * (1 KiB), with room to spare. After a level, twice what it measured.
 */
const PRIOR_BYTES_PER_CONNECTION = 64 * 1024;
/** Share of the memory available now that a level may be predicted to take. */
const MEMORY_SHARE = 0.5;
/** Share of conntrack's table and of fs.file-max a level may fill (other programs use them too). */
const TABLE_SHARE = 0.9;

/** The machine's state a level is checked against (step 1). */
export interface Room {
  /** The harness's open-file limit: the holder's (it inherits it). */
  readonly fdLimit?: number;
  /** Why prlimit could not raise it, if it could not (its own words). */
  readonly fdLimitRefused?: string;
  readonly serverFdLimit?: number;
  readonly fileMax?: number;
  /** Open files on the machine now (fs.file-nr's first field). */
  readonly filesOpen?: number;
  readonly memAvailableBytes?: number;
  readonly bytesPerConnection: number;
  readonly conntrack?: Conntrack;
  /** Conntrack entries per connection measured at a level before (1 until then: assume tracked). */
  readonly conntrackPerConnection: number;
  readonly portRange?: PortRange;
}

/** Step 1: why `n` idle connections cannot be tried here, in one line, or how many source addresses they need. */
export function checkLevel(n: number, room: Room): { refusal: string } | { sources: number } {
  const count = (x: number) => Math.round(x).toLocaleString('en-US');
  const GiB = 1024 ** 3;
  const fds = n + FD_HEADROOM;
  if (room.fdLimit !== undefined && room.fdLimit < fds) {
    const why = room.fdLimitRefused ? `${room.fdLimitRefused}; raising a hard limit needs CAP_SYS_RESOURCE` : 'raised with prlimit as far as allowed';
    return { refusal: `the open-file limit is ${count(room.fdLimit)} (${why}), too few for ${count(n)} connections` };
  }
  if (room.serverFdLimit !== undefined && room.serverFdLimit < fds) return { refusal: `the server's open-file limit is ${count(room.serverFdLimit)}, too few for ${count(n)} connections` };
  if (room.fileMax !== undefined && (room.filesOpen ?? 0) + 2 * n > TABLE_SHARE * room.fileMax) {
    return { refusal: `${count(2 * n)} more open files (both ends) would pass ${TABLE_SHARE * 100}% of fs.file-max ${count(room.fileMax)} with ${count(room.filesOpen ?? 0)} open` };
  }
  if (room.conntrack && room.conntrack.count + n * room.conntrackPerConnection > TABLE_SHARE * room.conntrack.max) {
    return { refusal: `${count(n * room.conntrackPerConnection)} conntrack entries would pass ${TABLE_SHARE * 100}% of nf_conntrack_max ${count(room.conntrack.max)} with ${count(room.conntrack.count)} in use` };
  }
  if (room.memAvailableBytes !== undefined && n * room.bytesPerConnection > MEMORY_SHARE * room.memAvailableBytes) {
    return {
      refusal: `${count(n)} connections at ${(room.bytesPerConnection / 1024).toFixed(1)} KiB each would take ${((n * room.bytesPerConnection) / GiB).toFixed(1)} GiB, over ${MEMORY_SHARE * 100}% of the ${(room.memAvailableBytes / GiB).toFixed(1)} GiB available`,
    };
  }
  if (!room.portRange) return n === 0 ? { sources: 0 } : { refusal: 'net.ipv4.ip_local_port_range cannot be read, so the ports a level needs are unknown' };
  return sourcesFor(n, room.portRange);
}

/** The soft and hard open-file limits of this process. */
function ownFdLimits(): { soft: number; hard: number } | undefined {
  try {
    const match = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match ? { soft: Number(match[1]), hard: Number(match[2]) } : undefined;
  } catch {
    return undefined;
  }
}

/** Sets this process's limits with prlimit; returns prlimit's own words if it could not. */
function setFdLimits(soft: number, hard: number): string | undefined {
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (error) {
    // Not allowed (no CAP_SYS_RESOURCE above the hard limit), or no prlimit: step 1 says the limit where it is too low.
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return stderr || (error instanceof Error ? error.message.split('\n')[0] : String(error));
  }
}

/** What the run saw of the machine, for the report (facts). */
let observed: Record<string, number | string> = {};

function observeMachine(before: { soft: number; hard: number } | undefined, raisedTo: number | undefined): void {
  const range = ephemeralPortRange();
  const ct = conntrack();
  const entries: [string, number | string | undefined][] = [
    ['fdLimitBefore', before?.soft],
    ['fdLimit', raisedTo],
    ['nrOpen', sysctlNumber('fs.nr_open')],
    ['fileMax', sysctlNumber('fs.file-max')],
    ['memTotalBytes', memTotalBytes()],
    ['memAvailableBytes', observed.memAvailableBytes ?? memAvailableBytes()],
    ['conntrackMax', ct?.max],
    ['portRange', range ? `${range.low}-${range.high}` : undefined],
    ['portsPerSource', range ? connectionsPerSource(range) : undefined],
    ['pageSize', pageSize()],
    ['cores', os.availableParallelism()],
  ];
  observed = { ...observed, ...Object.fromEntries(entries.filter((e): e is [string, number | string] => e[1] !== undefined)) };
}

const filesOpen = () => Number(readFileSync('/proc/sys/fs/file-nr', 'utf8').split(/\s+/)[0]);

/**
 * Every lab of the registry, as data: one-core labs in every variant (their multiplexer is the
 * lesson), multi-core labs in their first; the C reference, not plain Node (it splits the raw
 * echo's cost, and holds connections as lab 04 does). A lab whose model cannot hold a level (one connection
 * at a time, a process per connection up to its cap) is measured up to it and stops there, with
 * the reason the run saw.
 */
const leaveOut = (target: TargetSpec) => (target.id === PLAIN_NODE_ID ? firstVariant(target) : idleVariants(target));

export const idleScenario: Scenario = {
  id: 'idle',
  title: 'Idle connections beside busy ones (C10K)',
  protocol: 'echo',
  cells: (settings) =>
    [...settings.idle]
      .sort((a, b) => a - b)
      .map((idle) => ({
        key: `i${idle}`,
        title: `${idle.toLocaleString('en-US')} idle + ${settings.idleActive} busy × ${MESSAGE_BYTES} B`,
        params: { idle, connections: settings.idleActive, messageBytes: MESSAGE_BYTES },
      })),
  estimate: (settings, cell) =>
    cell.params.idle! / HANDSHAKES_PER_S + 0.5 + settings.repeats * (settings.warmup + settings.duration + 0.4),
  leaveOut,
  facts: () => observed,
  run: async (target, cells, context) => {
    const why = cClientUnavailable();
    if (why) return cannotMeasure(target, cells, why);
    const most = Math.max(...cells.map((c) => c.params.idle! + c.params.connections!));
    const before = ownFdLimits();
    const needed = most + FD_HEADROOM;
    // Soft and hard: the server and the holder, started after this, inherit both.
    const refused = before && before.soft < needed ? setFdLimits(needed, Math.max(needed, before.hard)) : undefined;
    if (refused) observed.fdLimitRefused = refused;
    observed.memAvailableBytes ??= memAvailableBytes() ?? 0;
    observeMachine(before, openFileLimit('self'));
    let freshRss: number | null = null;
    let bytesPerConnection = PRIOR_BYTES_PER_CONNECTION;
    let conntrackPerConnection = 1;
    try {
      return await runCellsOnOneServer(idleScenario, target, cells, context, { protocol: 'echo', workUs: 0, maxConns: needed }, async (server, cell, repeats, onRepeat) => {
        const n = cell.params.idle!;
        const rss = () => (server.pid === undefined ? null : treeUsage(server.pid, {}).rssBytes);
        freshRss ??= rss(); // before the first level's connections: the server as it started
        const ct = conntrack();
        const level = checkLevel(n, {
          fdLimit: openFileLimit('self'),
          ...(refused ? { fdLimitRefused: refused } : {}),
          ...(server.pid === undefined ? {} : { serverFdLimit: openFileLimit(server.pid) }),
          fileMax: sysctlNumber('fs.file-max'),
          filesOpen: filesOpen(),
          memAvailableBytes: memAvailableBytes(),
          bytesPerConnection,
          ...(ct ? { conntrack: ct } : {}),
          conntrackPerConnection,
          portRange: ephemeralPortRange(),
        }); // step 1
        if ('refusal' in level) throw new CannotReach('not-attempted', `not attempted: ${level.refusal}`);

        const kernelBefore = kernelSample(); // step 2
        let hold: CHold | undefined;
        try {
          if (n > 0) {
            context.progress.update(`opening ${n.toLocaleString('en-US')} idle connections over ${level.sources} source address${level.sources === 1 ? '' : 'es'}`);
            hold = await holdCEchoConnections({ host: server.host, port: server.port, connections: n, sources: level.sources, stallSeconds: OPEN_STALL_S, maxSeconds: openBoundS(n), ...(context.cpus ? { cpus: context.cpus.loadGenerator } : {}) });
            const { answered, openS, openEnd, firstErrors } = hold.report;
            if (answered < n) {
              const ended = { stalled: `none newly answered for ${OPEN_STALL_S} s`, bound: `the opening's ${openBoundS(n)} s bound`, failed: 'every connection failed', answered: 'every other one failed' }[openEnd];
              const first = firstErrors[0] ? `; first error: ${firstErrors[0].detail}` : '';
              throw new CannotReach('cannot', `${answered.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} idle connections answered in ${openS.toFixed(1)} s (${ended})${first}${target.limit ? ` (${target.limit})` : ''}`);
            }
          }
          const during = kernelSample(); // step 3
          const held = rss();
          const cost = perConnection({ n, freshRssBytes: freshRss, rssBytes: held, before: kernelBefore, during, pageSize: Number(observed.pageSize ?? 4096) });
          if (cost.rssPerConnection !== null && cost.kernelPerConnection !== null) bytesPerConnection = Math.max(PRIOR_BYTES_PER_CONNECTION, 2 * (cost.rssPerConnection + cost.kernelPerConnection));
          if (cost.conntrackPerConnection !== null) conntrackPerConnection = Math.max(cost.conntrackPerConnection, 0.01);
          const levelMetrics = {
            idle: n,
            openS: hold ? hold.report.openS : null,
            sources: level.sources,
            serverRssBytes: held,
            ...cost,
          };
          const windows = await cClientWindows(server, { connections: cell.params.connections!, size: MESSAGE_BYTES, warmupS: context.settings.warmup }, context, repeats, onRepeat); // step 4
          return windows.map(({ metrics, notes }) => ({ metrics: { ...levelMetrics, ...metrics } satisfies Metrics<'idle'>, notes }));
        } finally {
          await hold?.close(); // step 5 (the runner then waits for the server to settle)
        }
      });
    } finally {
      // Put the limit back: nothing raised for this server outlives it.
      if (before && openFileLimit('self') !== before.soft) setFdLimits(before.soft, before.hard);
    }
  },
};
