/**
 * results/chat.md from results/chat.json alone: a Summary row per model at the middle room, then
 * every room and the slow-reader case. What a model's design does to the room is its README's to
 * explain; this report says what the figures say, and nothing here knows a lab by name.
 */

import { formatBytes } from '../../shared/log.js';
import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check, columnFindings, compare } from '../kit/findings.js';
import { once, type Table } from '../kit/table.js';
import type { ChatCell, ChatReport, ChatRun, ChatTarget } from './results.js';

/** From this share of one core the load generator is the ceiling of the run, not the server. */
export const LOAD_GEN_CEILING = 0.9;

const name = (t: ChatTarget) => (t.variant ? `${t.label} (${t.variant})` : t.label);
const ms = (us: number) => (us >= 100_000 ? (us / 1000).toFixed(0) : us >= 10_000 ? (us / 1000).toFixed(1) : (us / 1000).toFixed(2));
const rate = (n: number) => (n >= 100_000 ? `${(n / 1000).toFixed(0)}k` : n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
/** Server CPU per delivered message, µs. */
const cpuPerDelivery = (run: ChatRun) => (run.serverCpuMs === null || run.deliveries === 0 ? undefined : (run.serverCpuMs * 1000) / run.deliveries);
const capped = (run: ChatRun) => run.loadGenCoreFraction >= LOAD_GEN_CEILING;

function runCells(run: ChatRun | undefined): string[] {
  if (!run) return ['–', '–', '–', '–', '–', '–'];
  const cpu = cpuPerDelivery(run);
  const note = capped(run) ? ' ⚠' : '';
  const errors = run.errors.total > 0 ? ` (${run.errors.total} errors)` : '';
  return [
    `${rate(run.deliveriesPerSec)}${note}${errors}`,
    ms(run.latencyUs.p50),
    ms(run.latencyUs.p99),
    ms(run.latencyUs.max),
    cpu === undefined ? '–' : cpu.toFixed(2),
    `${Math.round(run.loadGenCoreFraction * 100)} %`,
  ];
}

function roomTable(report: ChatReport, members: number): string[] {
  const { targets, settings } = report.results;
  const lines = [
    `| Lab | Senders | Delivered/s | p50 ms | p99 ms | max ms | Server µs CPU per delivery | Load generator CPU |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const target of targets) {
    const skip = target.skipped.find((s) => s.members === members);
    if (skip) {
      lines.push(`| ${name(target)} | – | not measured: ${skip.reason} | | | | | |`);
      continue;
    }
    const at = target.failedAt;
    // A failure before any cell (or in a report that does not say where): one row says it.
    if (target.failed && at === undefined && !target.runs.some((r) => r.members === members)) {
      lines.push(`| ${name(target)} | – | failed: ${target.failed} | | | | | |`);
      continue;
    }
    for (const senders of settings.senders) {
      const run = target.runs.find((r) => r.members === members && r.senders === senders);
      if (run || !target.failed || at === undefined) lines.push(`| ${name(target)} | ${senders} | ${runCells(run).join(' | ')} |`);
      else if (!at.slow && at.members === members && at.senders === senders) lines.push(`| ${name(target)} | ${senders} | failed: ${target.failed} | | | | | |`);
      else lines.push(`| ${name(target)} | ${senders} | not measured: ${stoppedAt(at)} | | | | | |`);
    }
  }
  return lines;
}

function slowTable(report: ChatReport): string[] {
  const lines = [
    '| Lab | Fast members p99 ms, all reading | p99 ms, one never reads | Delivered/s, all reading | Delivered/s, one never reads | Server peak RSS, all reading | Peak RSS, one never reads | Cut off |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const target of report.results.targets) {
    if ('skipped' in target.slow) {
      const why = target.failedAt?.slow ? `failed: ${target.failed}` : `not measured: ${target.slow.skipped}`;
      lines.push(`| ${name(target)} | ${why} | | | | | | |`);
      continue;
    }
    const { without, with: stuck } = target.slow;
    const rss = (run: ChatRun) => (run.serverPeakRssBytes === null ? '–' : formatBytes(run.serverPeakRssBytes));
    lines.push(
      `| ${name(target)} | ${ms(without.latencyUs.p99)} | ${ms(stuck.latencyUs.p99)} | ${rate(without.deliveriesPerSec)} | ${rate(stuck.deliveriesPerSec)} | ${rss(without)} | ${rss(stuck)} | ${stuck.cutOff} |`,
    );
  }
  return lines;
}

/** Why a cell after a failed one has no figures: the run had stopped at that one. */
const stoppedAt = (at: ChatCell) => `the run stopped at ${at.slow ? 'the slow-reader case' : `${at.members} members, ${at.senders} sender${at.senders > 1 ? 's' : ''}`}`;

/** The middle room and the most senders: the Summary's cell. */
function headline(report: ChatReport): { members: number; senders: number } {
  const { rooms, senders } = report.results.settings;
  return { members: rooms.includes(100) ? 100 : rooms[0]!, senders: Math.max(...senders) };
}

function summary(report: ChatReport): Table {
  const { members, senders } = headline(report);
  const runOf = (t: ChatTarget) => t.runs.find((r) => r.members === members && r.senders === senders);
  const figure = (t: ChatTarget, value: (run: ChatRun) => number | undefined, mark = false) => {
    const run = runOf(t);
    const v = run && value(run);
    // A run that stopped at a smaller room (a pool of 6 threads holds 6 members) says where; the detail says why.
    const stopped = t.failedAt && !t.failedAt.slow ? `stopped at ${t.failedAt.members} members` : 'failed';
    return v === undefined ? { text: t.failed ? stopped : 'not measured' } : { summary: once(v), saturated: capped(run!), ...(mark && capped(run!) ? { text: '⚠' } : {}) };
  };
  return {
    columns: [
      { header: 'server µs CPU/delivery', unit: 'cpuUs', better: 'lower', explain: `server CPU per line delivered to a member, room of ${members} with ${senders} senders: fair whoever set the pace (one run each: nothing is ranked)` },
      { header: 'delivered/s', unit: 'rate', better: 'higher', throughput: true, explain: `lines received by members per second; ⚠ where the load generator used ${Math.round(LOAD_GEN_CEILING * 100)}% of its core or more (its ceiling)` },
      { header: 'fan-out p99 ms', unit: 'ms', better: 'lower', explain: "from a line's send() to its arrival at the last member to get it" },
      { header: 'slow reader cut off', unit: 'count', explain: 'members cut off in the slow-reader case (one never reads)' },
    ],
    rows: report.results.targets.map((t) => ({
      label: name(t),
      cells: [
        figure(t, cpuPerDelivery),
        figure(t, (run) => run.deliveriesPerSec, true),
        figure(t, (run) => run.latencyUs.p99 / 1000),
        'with' in t.slow ? { summary: once(t.slow.with.cutOff) } : { text: 'not measured' },
      ],
    })),
  };
}

export function renderChat(report: ChatReport): Page {
  const { members, senders } = headline(report);
  const table = summary(report);
  const cpu = table.rows.flatMap((row) => (row.cells[0]?.summary ? [{ row: row.label, summary: row.cells[0].summary }] : [])).sort((a, b) => a.summary.median - b.summary.median);
  const slow = report.results.targets.filter((t) => 'with' in t.slow);
  const cell = `at ${members} members, ${senders} senders`;
  return {
    intro: `The chat room (\`--protocol chat\`) in every lab that keeps one: fan-out latency and delivered messages/s for rooms of ${report.results.settings.rooms.join(', ')} with ${report.results.settings.senders.join(' and ')} senders, server CPU per delivery, and a member that never reads.`,
    summary: table,
    chart: barChart('summary', `Server CPU µs per delivered message, ${cell}`, 'µs', table.rows.map((r) => ({ label: r.label, value: r.cells[0]?.summary?.median }))),
    findings: [
      compare(`server CPU per delivery ${cell}, most against least`, 'cpuUs', cpu.at(-1), cpu[0]),
      ...columnFindings(table, 1, `delivered/s ${cell}`).filter((f) => f.kind === 'saturated'),
      check('the member that never reads cut off', slow, name, (t) => 'with' in t.slow && t.slow.with.cutOff > 0),
      check('every room measured to the end', report.results.targets, name, (t) => !t.failed),
    ],
    detail: detail(report),
  };
}

function detail(report: ChatReport): string[] {
  const { settings, targets, leftOut } = report.results;
  const mid = settings.rooms.includes(100) ? 100 : settings.rooms[0]!;
  const anyCapped = targets.some((t) => t.runs.some(capped));
  const lines: string[] = [
    `Each lab runs \`--protocol chat\`. The load generator (bench/load/c-chat-client.c, one C epoll loop) joins every member, then each sender keeps one ${settings.size}-byte line in flight: it sends the next as soon as every other member has the last one. ` +
      `**Delivered/s** counts lines received by members in the ${settings.seconds} s window (after ${settings.warmupS} s of warm-up); **fan-out latency** is from a line's send() to its arrival at the last member to get it. ` +
      `Server CPU per delivery is the server's whole process tree over the window divided by the deliveries; the load generator's CPU is its own share of one core over the same window` +
      ` (from ${Math.round(LOAD_GEN_CEILING * 100)} % it is the ceiling of the run, marked ⚠).`,
    '',
    `## A room of ${mid}`,
    '',
    ...roomTable(report, mid),
    '',
  ];
  for (const target of targets) {
    if (!target.failed) continue;
    const where = target.failedAt ? (target.failedAt.slow ? ', in the slow-reader case' : `, at ${target.failedAt.members} members, ${target.failedAt.senders} sender${target.failedAt.senders > 1 ? 's' : ''}`) : '';
    lines.push(`${name(target)}: the run stopped early${where}: ${target.failed}; the cells after it were not measured.`, '');
  }
  if (anyCapped) lines.push('⚠ In some runs the load generator used most of a core: those rows measure it as much as the server, and the server\'s CPU per delivery is the figure to compare.', '');
  for (const members of settings.rooms) {
    if (members === mid) continue;
    lines.push(`## A room of ${members}`, '', ...roomTable(report, members), '');
  }
  lines.push(
    '## A slow reader',
    '',
    `${settings.slow.members} reading members and one sender of ${settings.slow.size}-byte lines for ${settings.slow.seconds} s, first with every member reading, then with one more member that never reads a byte. ` +
      'Each member has a bounded queue in the server (64 KiB, shared/chat.ts): once the kernel\'s buffers for the stuck member are full and its queue passes the bound, it is cut off (the last column counts the server\'s log lines saying so). ' +
      'The reading members\' p99 and the server\'s peak RSS should not grow with it: the room does not wait for it, and does not hold its backlog.',
    '',
    ...slowTable(report),
    '',
    ...report.results.targets.flatMap((target) =>
      'with' in target.slow && target.slow.with.cutOff === 0
        ? [
            `${name(target)}: the member that never read was not cut off within the run: at ${rate(target.slow.with.deliveriesPerSec)} deliveries/s what it was sent still fit in the kernel's buffers, before its queue in the server began to grow.`,
            '',
          ]
        : [],
    ),
  );
  if (leftOut.length > 0) {
    lines.push('## Not measured', '');
    for (const { lab, reason } of leftOut) lines.push(`- ${lab}: ${reason}.`);
    lines.push('');
  }
  return lines;
}
