/**
 * Renders the files report from its JSON alone: per file size, each server's requests/s, MB/s,
 * CPU per MiB sent (its own and wrk's), then the system calls per request under strace, and what
 * the figures say, explained from the copies each model makes; then the cold-cache scenario
 * (cold.ts): small-file latency beside a download from the disk, against the same from the cache.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { compare, columnFindings } from '../kit/findings.js';
import type { ReportFile } from '../kit/report-file.js';
import { once, type Table } from '../kit/table.js';
import { findLab } from '../../labs/index.js';
import type { CallCount } from '../syscalls/trace.js';
import type { ColdResults, ColdRun, ColdTarget } from './cold.js';
import { fileName, MiB, type FileTarget, type LoadCell, type Plan, type TargetResult } from './measure.js';

/** 2: the cold-cache scenario (`cold`), lab 07's copies, and wrk's latency percentiles. */
export const FILES_SCHEMA = 2;
export interface FilesReport extends ReportFile<'files', typeof FILES_SCHEMA> {
  readonly results: FilesResults;
}

export interface FilesResults {
  readonly plan: Plan;
  readonly tool: string;
  readonly targets: readonly TargetResult[];
  /** Absent from a schema-1 file: it was measured before the scenario existed. */
  readonly cold?: ColdResults;
}

/** A lab whose first variant (the one this experiment runs) starts a thread for each connection (the registry's LabVariant). */
const threadPerConnection = (labId: string) => findLab(labId)?.variants[0]?.threadPerConnection === true;

/** A schema-1 file is a schema-2 file without the cold-cache scenario: lifted as it is. */
export function migrateFilesV1(raw: Record<string, unknown>): FilesReport | undefined {
  if (raw.experiment !== 'files' || raw.schema !== 1) return undefined;
  return { ...(raw as unknown as FilesReport), schema: FILES_SCHEMA };
}

/** wrk at or above this share of a core was (near) the ceiling: its figure measures wrk, not the server. */
export const TOOL_CEILING_PCT = 85;

/** The copies each way of sending makes, and what they cost, in one line each. */
const COPIES: Record<FileTarget['copy'], string> = {
  sendfile:
    'sendfile(2): the kernel copies from the page cache into the socket buffer itself; no byte enters the process, and one call moves as much as the send buffer has room for',
  'read-write':
    'pread(2) into a 64 KiB buffer of the lab (copy 1, kernel to user), write(2) from it (copy 2, user to kernel): every byte crosses the boundary twice, two calls per 64 KiB',
  'read-send':
    'io_uring by hand: a READ entry fills a 64 KiB mmap\'d buffer of the lab from the file (copy 1), a SEND entry sends it (copy 2), the response\'s head in front of the first; no system call per chunk, one io_uring_enter per loop turn carries every entry of the turn',
  splice:
    'io_uring by hand: a SPLICE entry moves up to 64 KiB of the file\'s page-cache pages into a pipe by reference, a second SPLICE moves them from the pipe into the socket (no copy through the process, as sendfile); a full socket ends the second with EAGAIN and a POLL_ADD entry waits for room',
  node:
    'Node streams: pread(2) on a libuv thread-pool thread into a fresh 64 KiB Buffer (copy 1), then write(2)/writev(2) on the loop thread (copy 2): two copies per byte, two calls and a hop between threads per 64 KiB (the futex calls and eventfd reads in the strace table), and a new Buffer for the garbage collector each time',
};

/** Each lab's copy that stays in the kernel, and its copy through a buffer of the process: the pair its findings compare. */
const IN_KERNEL: readonly FileTarget['copy'][] = ['sendfile', 'splice'];
const THROUGH_PROCESS: readonly FileTarget['copy'][] = ['read-write', 'read-send'];

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const num = (n: number) => (!Number.isFinite(n) ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const perMiB = (cpuMs: number, bytes: number) => (bytes > 0 ? cpuMs / (bytes / MiB) : Number.NaN);

/** One load run's figures: its rates, CPU per MiB sent (the server's and wrk's), and each one's share of a core. */
function cellFigures(cell: LoadCell) {
  const seconds = cell.wrk.durationMs / 1000;
  return {
    requestsPerSecond: cell.wrk.requests / seconds,
    megabytesPerSecond: cell.wrk.bytes / 1e6 / seconds,
    serverCpuMsPerMiB: perMiB(cell.serverCpuMs, cell.wrk.bytes),
    toolCpuMsPerMiB: perMiB(cell.wrk.cpuMs, cell.wrk.bytes),
    toolCorePct: (100 * cell.wrk.cpuMs) / cell.wrk.durationMs,
    serverCorePct: (100 * cell.serverCpuMs) / cell.wrk.durationMs,
  };
}

/** Calls per response's worth of bytes, by name, from one traced run. */
function perRequest(calls: Record<string, CallCount>, responses: number, ...names: string[]): number {
  return responses > 0 ? names.reduce((sum, name) => sum + (calls[name]?.calls ?? 0), 0) / responses : Number.NaN;
}
const allCalls = (calls: Record<string, CallCount>) => Object.values(calls).reduce((sum, c) => sum + c.calls, 0);

function loadTable(results: FilesResults, size: number): string[] {
  const lines = [
    '| Server | connections | requests/s | MB/s | server CPU, ms per MiB | server CPU, % of a core | wrk CPU, ms per MiB | wrk CPU, % of a core | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { target, load } of results.targets) {
    for (const cell of load.filter((c) => c.size === size)) {
      const f = cellFigures(cell);
      const capped = f.toolCorePct >= TOOL_CEILING_PCT ? ' ⚠ wrk near a full core' : '';
      const errors = cell.wrk.errors === 0 ? '0' : `${cell.wrk.errors}${cell.wrk.timeouts ? ` (${cell.wrk.timeouts} timeouts)` : ''}`;
      lines.push(
        `| ${target.label} | ${cell.connections} | ${num(f.requestsPerSecond)} | ${num(f.megabytesPerSecond)} | ${fixed(f.serverCpuMsPerMiB, 2)} | ${fixed(f.serverCorePct, 0)} | ${fixed(f.toolCpuMsPerMiB, 2)} | ${fixed(f.toolCorePct, 0)}${capped} | ${errors} |`,
      );
    }
  }
  return lines;
}

function syscallTable(results: FilesResults): string[] {
  const lines = [
    '| Server | file | responses traced | sendfile | pread64 | read | write + writev | epoll_wait + poll | io_uring_enter | futex | all calls |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const { target, traced } of results.targets) {
    for (const cell of traced) {
      if (cell.responses === 0) {
        lines.push(`| ${target.label} | ${fileName(cell.size)} | 0 | no response completed under strace | | | | | | | |`);
        continue;
      }
      const r = (...names: string[]) => num(perRequest(cell.calls, cell.responses, ...names));
      lines.push(
        `| ${target.label} | ${fileName(cell.size)} | ${num(cell.responses)} | ${r('sendfile')} | ${r('pread64')} | ${r('read')} | ${r('write', 'writev')} | ${r('epoll_wait', 'epoll_pwait', 'poll')} | ${r('io_uring_enter')} | ${r('futex')} | ${num(cell.responses > 0 ? allCalls(cell.calls) / cell.responses : Number.NaN)} |`,
      );
    }
  }
  return lines;
}

/**
 * The caveats a reader needs before comparing the tables: who set the pace, and whose figures
 * are not a server's rate. Each lab's copies compared are the summary's findings; the calls per
 * request are the strace table.
 */
function caveats(results: FilesResults): string[] {
  const size = Math.max(...results.plan.sizes);
  const out: string[] = [];
  const capped = results.targets.flatMap(({ target, load }) =>
    load.filter((c) => cellFigures(c).toolCorePct >= TOOL_CEILING_PCT).map((c) => `${target.label} (${fileName(c.size)}, ${c.connections} conn.)`),
  );
  out.push(
    capped.length === 0
      ? `- wrk stayed under ${TOOL_CEILING_PCT}% of a core in every run: the load tool was not the ceiling; where a server's CPU is near 100% of a core, the server was.`
      : `- wrk was at ${TOOL_CEILING_PCT}% of a core or more in ${capped.length} run(s): ${capped.join(', ')}. There the MB/s is wrk's ceiling (it copies every byte it reads once more, into its own buffer), not the server's: compare the servers by CPU per MiB.`,
  );
  const serial = results.targets.filter(({ target }) => target.serial).flatMap(({ target, load }) => load.filter((c) => c.connections > 1).map((c) => ({ target, c })));
  if (serial.length > 0) {
    out.push(
      `- ${serial[0]!.target.labId} serves one connection at a time: with ${serial[0]!.c.connections} connections its figures come from the one it was serving, while the others waited in the kernel's accept queue for the whole run. Its rate is not a rate of ${serial[0]!.c.connections} clients.`,
    );
  }
  for (const { target } of results.targets.filter((t) => t.target.children || threadPerConnection(t.target.labId))) {
    const what = target.children ? 'a Node process' : 'a thread with a V8 isolate of its own';
    out.push(
      `- ${target.label} starts ${what} for every connection wrk opens (each run opens new ones): its CPU and its system calls include those start-ups, ` +
        'which at 50 connections outweigh the files themselves, and under strace the start-up is slowed most of all. That is the cost of its model, not of sending files.',
    );
  }
  out.push(
    `- At ${fileName(size)} and ${Math.max(...results.plan.connections)} connections every connection shares the bandwidth, so one response takes longer than a ${results.plan.seconds} s run and few (or none) complete: there requests/s says little, and MB/s (every byte received, finished responses or not) is the figure.`,
  );
  return out;
}

function summary(results: FilesResults): Table {
  const size = Math.max(...results.plan.sizes);
  const most = Math.max(...results.plan.connections);
  const cellOf = (t: TargetResult, connections: number) => t.load.find((c) => c.size === size && c.connections === connections);
  return {
    columns: [
      { header: 'server CPU ms/MiB', unit: 'ms', better: 'lower', explain: `server CPU per MiB delivered, ${fileName(size)} on 1 connection: the cost of the copies and calls, fair whoever set the pace (one run each: nothing is ranked)` },
      { header: 'MB/s, 1 conn', unit: 'rate', better: 'higher', throughput: true, explain: `${fileName(size)}: every byte wrk received per second; ⚠ where wrk was at ${TOOL_CEILING_PCT}% of a core or more (its ceiling, not the server's)` },
      { header: `MB/s, ${most} conn`, unit: 'rate', better: 'higher', throughput: true },
      { header: 'calls/request', unit: 'count', better: 'lower', explain: `every system call per ${fileName(size)} response, under strace` },
      ...(results.cold
        ? [
            { header: `${fileName(results.cold.plan.smallBytes)} p99, warm`, unit: 'ms' as const, explain: coldExplain(results.cold, 'warm') },
            { header: `${fileName(results.cold.plan.smallBytes)} p99, cold`, unit: 'ms' as const, explain: coldExplain(results.cold, 'cold') },
          ]
        : []),
    ],
    rows: results.targets.map((t) => {
      const mbps = (connections: number) => {
        const cell = cellOf(t, connections);
        if (!cell) return undefined;
        const f = cellFigures(cell);
        const saturated = f.toolCorePct >= TOOL_CEILING_PCT;
        return { summary: once(f.megabytesPerSecond), saturated, starved: t.target.serial && connections > 1, ...(saturated ? { text: '⚠' } : {}) };
      };
      const one = cellOf(t, 1);
      const traced = t.traced.find((c) => c.size === size);
      return {
        label: t.target.label,
        cells: [
          one ? { summary: once(cellFigures(one).serverCpuMsPerMiB) } : undefined,
          mbps(1),
          mbps(most),
          traced && traced.responses > 0 ? { summary: once(allCalls(traced.calls) / traced.responses) } : undefined,
          ...(results.cold ? (['warm', 'cold'] as const).map((cache) => coldCell(results.cold!, t.target, cache)) : []),
        ],
      };
    }),
  };
}

// --- The cold-cache scenario -------------------------------------------------------------------

const coldExplain = (cold: ColdResults, cache: 'warm' | 'cold') =>
  `p99 latency of ${fileName(cold.plan.smallBytes)} requests from ${cold.plan.smallConnections} wrk connections while one client downloads ${fileName(cold.plan.largeBytes)} again and again, ` +
  (cache === 'cold' ? 'its pages dropped from the page cache before each download (see "Cold cache")' : 'every page of it in the page cache');

function coldCell(cold: ColdResults, target: FileTarget, cache: 'warm' | 'cold') {
  const entry: ColdTarget | undefined = cold.targets.find((t) => t.target.id === target.id);
  if (!entry) return undefined;
  if ('skipped' in entry) return { text: 'n/a' };
  const latency = entry.runs.find((run) => run.cache === cache)?.small.latency;
  return latency ? { summary: once(latency.p99Us / 1000) } : undefined;
}

/**
 * A cold run is cold when every download began with at most this share of the large file in the
 * page cache (mincore, just before its request): a row over it is marked and left out of the
 * findings, for its stall (or the lack of one) would not be the disk's.
 */
const COLD_AT_MOST = 0.01;

/** Whether the run met its cache state: a warm run always does (it was read through first); a cold one by COLD_AT_MOST. */
const metCache = (run: ColdRun) => run.cache === 'warm' || downloadFigures(run).mostResident <= COLD_AT_MOST;

/** Downloads of a run, and the most of the file that was resident as any of them began. */
function downloadFigures(run: ColdRun): { count: number; mbps: number; mostResident: number } {
  const bytes = run.downloads.reduce((sum, d) => sum + d.bytes, 0);
  const ms = run.downloads.reduce((sum, d) => sum + d.ms, 0);
  return { count: run.downloads.length, mbps: ms > 0 ? bytes / 1e6 / (ms / 1000) : Number.NaN, mostResident: Math.max(0, ...run.downloads.map((d) => d.residentBefore)) };
}

function coldTable(cold: ColdResults): string[] {
  const { plan, disk } = cold;
  const rate = (read: { bytes: number; ms: number }) => num(read.bytes / 1e6 / (read.ms / 1000));
  const pct = (share: number) => `${fixed(100 * share, 1)}%`;
  const lines = [
    `While one client downloads ${fileName(plan.largeBytes)} again and again, ${plan.smallConnections} wrk connections fetch ${fileName(plan.smallBytes)} (always in the page cache) for ${plan.seconds} s; ` +
      'the same server, first with the large file warm (read through beforehand), then cold: before each cold download its pages were dropped with ' +
      'posix_fadvise(POSIX_FADV_DONTNEED), and before every download mincore(2) on a mapping of the file counted its pages in the page cache ("resident" below: the most any download of the run began with).',
    '',
    `The disk's own read rate, the large file dropped and read straight through by the harness in the same run: ${rate(disk.before)} MB/s before the servers' runs ` +
      `(${pct(disk.before.residentBefore)} resident as it began), ${rate(disk.after)} MB/s after them (${pct(disk.after.residentBefore)}). A cold download cannot go faster than that.`,
    '',
    `| Server | cache | ${fileName(plan.smallBytes)} p50, ms | p99, ms | max, ms | ${fileName(plan.smallBytes)} requests/s | errors | downloads | download MB/s | resident |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const entry of cold.targets) {
    if ('skipped' in entry) {
      lines.push(`| ${entry.target.label} | – | ${entry.skipped} | | | | | | | |`);
      continue;
    }
    for (const run of entry.runs) {
      const l = run.small.latency;
      const d = downloadFigures(run);
      const ms = (us: number | undefined) => (us === undefined ? '–' : fixed(us / 1000, 2));
      lines.push(
        `| ${entry.target.label} | ${run.cache} | ${ms(l?.p50Us)} | ${ms(l?.p99Us)} | ${ms(l?.maxUs)} | ${num(run.small.requests / (run.small.durationMs / 1000))} | ${run.small.errors} | ${d.count} | ${num(d.mbps)} | ${pct(d.mostResident)}${metCache(run) ? '' : ' ⚠ not cold'} |`,
      );
    }
  }
  lines.push(
    '',
    'Reading it: the question is whether a server\'s other clients wait for the disk. A loop that reads the file itself (sendfile or pread on the thread that serves everyone) ' +
      'sleeps in the kernel for each read the page cache cannot answer, so if it stalls, its cold row\'s p99 and max exceed its warm row\'s by about one such read ' +
      '(a send buffer\'s worth at the disk\'s rate above); a server that leaves the read to other threads (libuv\'s pool) or to the kernel (ring entries) should show no such step. ' +
      'The warm row is no idle baseline: its download runs at memory speed and takes CPU the small clients then wait for, while a cold download is paced by the disk. ' +
      'wrk\'s latency is closed-loop (a request waits for the one before it on its connection), one run each: read differences smaller than the machine\'s noise as none.',
  );
  return lines;
}

/** The lab whose small-file p99 grew most with the large file cold, and the one that grew least: two compare findings. */
function coldFindings(cold: ColdResults) {
  const pairs = cold.targets.flatMap((entry) => {
    if ('skipped' in entry) return [];
    const warmRun = entry.runs.find((r) => r.cache === 'warm');
    const coldRun = entry.runs.find((r) => r.cache === 'cold');
    const warm = warmRun?.small.latency;
    const cool = coldRun?.small.latency;
    if (!warm || !cool || warm.p99Us <= 0 || !metCache(coldRun!)) return [];
    const figure = (cache: string, us: number) => ({ row: `${entry.target.label}, ${cache}`, summary: once(us / 1000) });
    return [{ ratio: cool.p99Us / warm.p99Us, cold: figure('cold', cool.p99Us), warm: figure('warm', warm.p99Us) }];
  });
  if (pairs.length === 0) return [];
  const sorted = [...pairs].sort((a, b) => b.ratio - a.ratio);
  const what = `p99 of ${fileName(cold.plan.smallBytes)} beside a ${fileName(cold.plan.largeBytes)} download from the disk, against from the page cache`;
  const most = sorted[0]!;
  const least = sorted.at(-1)!;
  return [compare(what, 'ms', most.cold, most.warm), ...(least === most ? [] : [compare(what, 'ms', least.cold, least.warm)])];
}

export function renderFiles(report: FilesReport): Page {
  const results = report.results;
  const table = summary(results);
  const size = Math.max(...results.plan.sizes);
  const figure = (i: number) => ({ row: table.rows[i]!.label, summary: table.rows[i]!.cells[0]!.summary! });
  const pairs = [...new Set(results.targets.map((t) => t.target.labId))].flatMap((lab) => {
    const s = results.targets.findIndex((t) => t.target.labId === lab && IN_KERNEL.includes(t.target.copy));
    const w = results.targets.findIndex((t) => t.target.labId === lab && THROUGH_PROCESS.includes(t.target.copy));
    const named = (i: number) => results.targets[i]!.target.copy;
    const what = s >= 0 && w >= 0 ? `server CPU per MiB of ${fileName(size)}, ${named(w) === 'read-write' ? 'read/write' : named(w)} against ${named(s)}` : '';
    return s >= 0 && w >= 0 && table.rows[s]!.cells[0] && table.rows[w]!.cells[0] ? [compare(what, 'ms', figure(w), figure(s))] : [];
  });
  return {
    intro: `Static files over HTTP from every lab that serves them, with wrk: sendfile(2) against read/write and Node streams, for ${results.plan.sizes.map(fileName).join(', ')} at ${results.plan.connections.join(' and ')} connections.`,
    summary: table,
    chart: barChart('summary', `Server CPU per MiB sent, ${fileName(size)}, 1 connection (ms)`, 'ms per MiB', table.rows.map((r) => ({ label: r.label, value: r.cells[0]?.summary?.median }))),
    findings: [
      ...pairs.slice(0, results.cold ? 2 : 3),
      ...(results.cold ? coldFindings(results.cold) : []),
      ...columnFindings(table, 1, `MB/s of ${fileName(size)} on 1 connection`).filter((f) => f.kind !== 'unranked'),
      ...columnFindings(table, 2, 'MB/s with many connections').filter((f) => f.kind === 'starved'),
    ].slice(0, 5),
    method: [methodLine(results)],
    detail: detail(results),
  };
}

function methodLine(results: FilesResults): string {
  const { plan } = results;
  return (
    `Load: ${results.tool}, one thread, keep-alive, ${plan.connections.join(' and ')} connection(s), ${plan.seconds} s per run` +
    `${plan.warmupSeconds > 0 ? ` after ${plan.warmupSeconds} s of warm-up` : ''}, each file already in the page cache. ` +
    `Server CPU is the lab's whole process tree (user + system, from /proc) during the run; wrk's is its own, from its parent shell's cutime/cstime. ` +
    `System calls: one more run of ${plan.tracedSeconds} s on 1 connection under \`strace -f -c\` (which slows the server many times over: its counts are right, its speed is not), ` +
    "divided by the responses' worth of bytes wrk received (its bytes ÷ one response's head and body), so the response still in flight at the end counts for its part."
  );
}

function detail(results: FilesResults): string[] {
  const { plan } = results;
  const out: string[] = [];
  out.push('## How each server moves a file', '');
  for (const { target } of results.targets) out.push(`- **${target.label}**: ${COPIES[target.copy]}.`);
  out.push('', '## What the figures say', '', ...caveats(results));
  for (const size of plan.sizes) {
    out.push('', `## ${fileName(size)} files`, '', ...loadTable(results, size));
  }
  out.push('', '## System calls per request (1 connection, under strace)', '', ...syscallTable(results));
  if (results.cold) out.push('', '## Cold cache', '', ...coldTable(results.cold));
  out.push(
    '',
    'Reading the tables: "ms per MiB" is CPU time spent per MiB delivered, the cost of the copies and calls above; ' +
      'it stays comparable when the load tool or the machine set the throughput. For 4 KiB files the lookup per request ' +
      '(realpath, open with O_NOFOLLOW, fstat, a readlink of /proc/self/fd, close: shared/file-open.ts) and the HTTP head cost more than moving the bytes, ' +
      'so sendfile and read/write come close there; the larger the file, the more the copies weigh.',
  );
  return out;
}
