/**
 * Renders the system-call report from its JSON alone: per round trip and per connection, the calls
 * each server made (the ten most frequent by name, the rest summed), its context switches, and
 * what the numbers say about its model.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { compare, type Figure } from '../kit/findings.js';
import type { ReportFile } from '../kit/report-file.js';
import { once, type Table } from '../kit/table.js';
import { explain, perUnit } from './explain.js';
import type { PhaseCounts, ServerCounts } from './measure.js';
import type { Workload } from './workload.js';

export const SYSCALLS_SCHEMA = 1;
export interface SyscallsReport extends ReportFile<'syscalls', typeof SYSCALLS_SCHEMA> {
  readonly results: SyscallResults;
}

export interface SyscallServer {
  readonly id: string;
  readonly label: string;
  readonly model: string;
  /** Undefined when the server could not be measured, with the reason in `skipped`. */
  readonly counts?: ServerCounts;
  readonly skipped?: string;
}

export interface SyscallResults {
  readonly workload: Workload;
  readonly servers: readonly SyscallServer[];
}

/** How many calls each table lists by name before it sums the rest. */
const TOP_CALLS = 10;

const fmt = (n: number) => (n === 0 ? '0' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

function topCalls(phase: PhaseCounts): { name: string; rate: number }[] {
  return [...perUnit(phase)].map(([name, rate]) => ({ name, rate })).sort((a, b) => b.rate - a.rate || a.name.localeCompare(b.name));
}

function phaseTable(servers: readonly SyscallServer[], pick: (c: ServerCounts) => PhaseCounts, unit: string): string[] {
  const lines = [`| Server | calls per ${unit} | the ${TOP_CALLS} most frequent, per ${unit} | the rest | voluntary / involuntary context switches per ${unit} |`, '|---|---:|---|---:|---:|'];
  for (const server of servers) {
    if (!server.counts) {
      lines.push(`| ${server.label} | – | not measured: ${server.skipped ?? 'no result'} | – | – |`);
      continue;
    }
    const phase = pick(server.counts);
    const calls = topCalls(phase);
    const total = calls.reduce((t, c) => t + c.rate, 0);
    const top = calls.slice(0, TOP_CALLS);
    const rest = calls.slice(TOP_CALLS).reduce((t, c) => t + c.rate, 0);
    const switches = phase.contextSwitches;
    lines.push(
      `| ${server.label} | ${fmt(total)} | ${top.map((c) => `${c.name} ${fmt(c.rate)}`).join(', ')} | ${fmt(rest)} | ` +
        `${fmt(switches.voluntary / phase.units)} / ${fmt(switches.involuntary / phase.units)} |`,
    );
  }
  return lines;
}

const total = (phase: PhaseCounts) => [...perUnit(phase).values()].reduce((t, n) => t + n, 0);
const switches = (phase: PhaseCounts) => (phase.contextSwitches.voluntary + phase.contextSwitches.involuntary) / phase.units;

function summary(results: SyscallResults): Table {
  const measured = (pick: (c: ServerCounts) => number) => (server: SyscallServer) => (server.counts ? { summary: once(pick(server.counts)) } : { text: `not measured: ${server.skipped ?? 'no result'}` });
  return {
    columns: [
      { header: 'calls/round trip', unit: 'per', better: 'lower', explain: 'system calls of every process and thread of the server per echoed round trip, under strace (one run: nothing is ranked)' },
      { header: 'switches/round trip', unit: 'per', better: 'lower', explain: 'voluntary and involuntary context switches per round trip, from /proc, in a run without strace' },
      { header: 'calls/connection', unit: 'per', better: 'lower', explain: 'system calls per connection: connect, one echo, close' },
      { header: 'switches/connection', unit: 'per', better: 'lower' },
    ],
    rows: results.servers.map((server) => ({
      label: server.label,
      cells: [measured((c) => total(c.roundTrip)), measured((c) => switches(c.roundTrip)), measured((c) => total(c.connection)), measured((c) => switches(c.connection))].map((cell) => cell(server)),
    })),
  };
}

export function renderSyscalls(report: SyscallsReport): Page {
  const results = report.results;
  const table = summary(results);
  const figures = table.rows.flatMap((row) => (row.cells[0]?.summary ? [{ row: row.label, summary: row.cells[0].summary }] : [])).sort((a, b) => a.summary.median - b.summary.median);
  const connection = table.rows.flatMap((row) => (row.cells[2]?.summary ? [{ row: row.label, summary: row.cells[2].summary }] : [])).sort((a, b) => a.summary.median - b.summary.median);
  const fewestRoundTrip: Figure | undefined = figures[0];
  return {
    intro: 'System calls (`strace -f -c`) and context switches (`/proc`) per round trip and per connection, for every lab, plain Node and the C reference: what each model asks of the kernel.',
    summary: table,
    chart: barChart('summary', 'System calls per round trip', 'calls', table.rows.map((r) => ({ label: r.label, value: r.cells[0]?.summary?.median }))),
    findings: [
      compare('calls per round trip, most against fewest', 'per', figures.at(-1), fewestRoundTrip),
      compare('calls per connection, most against fewest', 'per', connection.at(-1), connection[0]),
    ],
    detail: detail(results),
  };
}

function detail(results: SyscallResults): string[] {
  const { workload } = results;
  const out: string[] = [];
  out.push(
    `Workload, the same for every server: ${workload.connections} connections × ${workload.roundTrips.toLocaleString('en-US')} round trips of ` +
      `${workload.size} B each, closed loop (each connection sends, waits for its whole echo, sends again); then ` +
      `${workload.churn} connections one after another, each connecting, echoing ${workload.size} B once and closing. ` +
      'A server that serves one client at a time runs the round trips on one connection (its others would wait for it).',
    '',
    '**How it was counted.** System calls: `strace -f -c` attached to every process of the server (all their threads, and the ' +
      'threads and children started later), detached when the phase ended; the connections of the round-trip phase are opened ' +
      'and echo once before strace attaches, so that phase counts round trips only. Context switches: a second run of each ' +
      'phase on a fresh server without strace, from the kernel counters in `/proc/PID/task/TID/status` of every thread (voluntary: a thread waited; involuntary: the scheduler took its core). ' +
      'strace stops a thread at every call, so under it a server runs many times slower: its counts stay right, its timings do ' +
      'not, and none are reported. One count does depend on timing: how many sockets are ready when a server waits. Slowed by strace, a ' +
      'server finds more ready at each wait, so the waits per round trip of an event loop are lower here than at full speed. A child process that exits during a phase takes its context switches with it ' +
      '(`/proc` no longer shows them), so per-connection children count only while they live. A few calls per phase are the ' +
      "server's own housekeeping (timers, a bounded wait timing out), spread over every unit.",
    '',
    '## Per round trip',
    '',
    ...phaseTable(results.servers, (c) => c.roundTrip, 'round trip'),
    '',
    '## Per connection (connect, one echo, close)',
    '',
    ...phaseTable(results.servers, (c) => c.connection, 'connection'),
    '',
    '## What the numbers say',
    '',
  );
  for (const server of results.servers) {
    if (!server.counts) continue;
    out.push(`**${server.label}** (${server.model}). ${explain(server.counts.roundTrip, server.counts.connection, server.counts.connections).join(' ')}`, '');
  }
  out.push(
    '## See it by hand',
    '',
    '```sh',
    'make lab-04 QUIET=1                                  # terminal 1: note the pid in its "listening" line',
    'strace -f -c -p PID                                  # terminal 2: Ctrl-C prints the table',
    'strace -f -e trace=epoll_wait,epoll_pwait,read,write -p PID   # or every call as it happens',
    'nc 127.0.0.1 8080                                    # terminal 3: type a few lines',
    '```',
  );
  return out;
}
