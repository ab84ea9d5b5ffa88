/**
 * results/chat.md from results/chat.json alone: the 100-member table first, then every room, the
 * slow-reader case, and what each model's design does to its figures.
 */

import { formatBytes } from '../../shared/log.js';
import { oneEventLoop } from '../kit/labs.js';
import { renderStamp } from '../kit/stamp.js';
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

/** Best delivered/s at a room size, with the lab's name, from the runs the load generator did not cap. */
function best(report: ChatReport, members: number, senders: number): { target: ChatTarget; run: ChatRun } | undefined {
  let found: { target: ChatTarget; run: ChatRun } | undefined;
  for (const target of report.results.targets) {
    const run = target.runs.find((r) => r.members === members && r.senders === senders);
    if (run && !capped(run) && run.errors.total === 0 && (!found || run.deliveriesPerSec > found.run.deliveriesPerSec)) found = { target, run };
  }
  return found;
}

/**
 * Least server CPU per delivered message at a room size, from every run without errors: the
 * figure a load generator near its ceiling does not distort (it slows the run, not the server's
 * cost per message), so the lead sentence gives it first.
 */
function cheapest(report: ChatReport, members: number, senders: number): { target: ChatTarget; run: ChatRun; us: number } | undefined {
  let found: { target: ChatTarget; run: ChatRun; us: number } | undefined;
  for (const target of report.results.targets) {
    const run = target.runs.find((r) => r.members === members && r.senders === senders);
    const us = run && run.errors.total === 0 ? cpuPerDelivery(run) : undefined;
    if (run && us !== undefined && (!found || us < found.us)) found = { target, run, us };
  }
  return found;
}

/** What each model's design does to a room, with its own figures where they exist. */
function explain(report: ChatReport): string[] {
  const out: string[] = [];
  const mid = report.results.settings.rooms.includes(100) ? 100 : report.results.settings.rooms[0]!;
  const at = (lab: string, senders = 10) => report.results.targets.find((t) => t.lab === lab)?.runs.find((r) => r.members === mid && r.senders === senders);
  const describe = (lab: string, text: (run: ChatRun | undefined) => string) => {
    if (report.results.targets.some((t) => t.lab === lab)) out.push(text(at(lab)), '');
  };
  // The one plain event loop measured (lab 04): what the other models' relays and threads cost beside it.
  const baseline = report.labs.find((lab) => oneEventLoop(lab.traits) && report.results.targets.some((t) => t.lab === lab.id));
  const baselineCpu = baseline && at(baseline.id) && cpuPerDelivery(at(baseline.id)!);
  const perDelivery = (run: ChatRun | undefined) => {
    const cpu = run && cpuPerDelivery(run);
    if (cpu === undefined) return '';
    const ratio = baselineCpu && run !== at(baseline!.id) ? `, ${(cpu / baselineCpu).toFixed(1)}× ${baseline!.label}'s` : '';
    return ` (${cpu.toFixed(2)} µs of server CPU per delivered message at ${mid} members, 10 senders${ratio})`;
  };
  describe('02-process-per-connection', (run) =>
    `- **02, process per connection.** The children share no memory, so the room is the parent's: every line a client sends goes up its child's IPC channel, and the parent writes it down the channel of every other child, which writes it to its own socket. A delivery costs a JSON message, an IPC write and read and a wake-up of another process on top of the socket write, and the parent does every relay alone${perDelivery(run)}.`,
  );
  describe('03-worker-pool', (run) =>
    `- **03, worker pool.** The main thread owns every socket and so the room; nothing of it runs on the pool (a message is only bytes to copy to sockets, which only the main thread can write). It is lab 04's loop with the pool's threads idle beside it in the same process, so the difference from lab 04 is what those threads cost${perDelivery(run)}.`,
  );
  describe('04-evented', (run) =>
    `- **04, evented.** A set of connections on one thread: a message is a loop over the members, one socket write each, queued by Node when the kernel is full. One core does all of it${perDelivery(run)}.`,
  );
  describe('05-event-loop', (run) =>
    `- **05, event loop by hand.** The same set, with the queue written out: each member's bytes wait in its own queue, and EPOLLOUT is asked for while any wait. Every write is a koffi call into libc${perDelivery(run)}.`,
  );
  describe('06-loop-per-core', (run) =>
    `- **06, one loop per core.** No loop sees another's members, so the room is the main thread's: a loop posts what its member said, and the main thread posts it back to every loop that has a member to hear it, once per loop, however many members that loop holds. The fan-out is spread over the loops; the relay is a thread hop each way${perDelivery(run)}.`,
  );
  // Lab 07's variants differ only in how the SENDs reach the kernel, which is the lab's point:
  // each variant measured gets its own figure, with the ratio to the plain event loop.
  const completion = report.results.targets.filter((t) => t.lab === '07-completion');
  if (completion.length > 0) {
    const figures = completion.flatMap((target) => {
      const run = target.runs.find((r) => r.members === mid && r.senders === 10);
      const cpu = run && cpuPerDelivery(run);
      if (cpu === undefined) return [];
      const ratio = baselineCpu && baseline!.id !== target.lab ? `, ${(cpu / baselineCpu).toFixed(1)}× ${baseline!.label}'s` : '';
      return [`${target.variant ? `${target.variant}: ` : ''}${cpu.toFixed(2)} µs${ratio}`];
    });
    out.push(
      `- **07, completion by hand.** Lab 05's set and per-member queues, but a member's bytes leave as a SEND entry, at most one in flight per member, from a send buffer of its own that is the kernel's until the completion comes back. ` +
        'Nothing is submitted while a line is handed out: with `--submit batch` every SEND of the loop turn goes to the kernel in one io_uring_enter, so a line to N members is N entries and one system call where lab 05 makes N write() calls; ' +
        '`--submit each` makes one call per entry, and with `--sqpoll` a kernel thread of the server\'s own takes the entries from the ring: it spins for a while after each submission before it sleeps, and its CPU is in the server\'s figure, so on a machine with few cores it competes with the loop and the load generator for them. ' +
        `Filling an entry and reaping a completion are loads and stores in the shared rings, done in JavaScript, as is copying each member's bytes into its send buffer` +
        (figures.length > 0 ? ` (server CPU per delivered message at ${mid} members, 10 senders, ${figures.join('; ')}).` : '.') +
        ' Those send buffers are memory too: each member with a SEND in flight holds one (64 KiB of address space, touched as far as its bytes go), and the pool keeps every buffer it has mapped, ' +
        'so after the 1,000-member room, which had up to a thousand in flight at once, the server stays larger than lab 05 (the slow-reader table runs on the same server, after the rooms).',
      '',
    );
  }
  return out;
}

export function renderChatReport(report: ChatReport): string {
  const { settings, targets, leftOut } = report.results;
  const mid = settings.rooms.includes(100) ? 100 : settings.rooms[0]!;
  const anyCapped = targets.some((t) => t.runs.some(capped));
  const lines: string[] = [
    '# Chat: one room, every model',
    '',
    renderStamp(report.stamp),
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
  for (const senders of settings.senders) {
    const withSenders = `With ${senders} sender${senders > 1 ? 's' : ''}`;
    const least = cheapest(report, mid, senders);
    if (least) lines.push(`${withSenders}, the least server CPU per delivered message at ${mid} members was ${name(least.target)}'s: ${least.us.toFixed(2)} µs (${rate(least.run.deliveriesPerSec)} deliveries/s${capped(least.run) ? ', with the load generator at its ceiling' : ''}).`);
    const top = best(report, mid, senders);
    if (top) lines.push(`${withSenders}, the most deliveries per second at ${mid} members came from ${name(top.target)}: ${rate(top.run.deliveriesPerSec)}/s, p99 ${ms(top.run.latencyUs.p99)} ms (runs the load generator capped are not ranked).`);
    if (least || top) lines.push('');
  }
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
    '## What each model does to the room',
    '',
    ...explain(report),
  );
  if (leftOut.length > 0) {
    lines.push('## Not measured', '');
    for (const { lab, reason } of leftOut) lines.push(`- ${lab}: ${reason}.`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}
