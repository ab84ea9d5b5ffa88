/**
 * Renders results/limits.json as Markdown and its pictures, from that file alone: the stamp, what
 * the cgroup probe found, the CPU tables (p99 by quota, then every case in full), the memory table
 * (connections held under the cap, what failed first and how, which clients lost what, what the
 * server logged), and SVG charts drawn by vega-lite (compiled to a vega spec, rendered headless to
 * SVG: no browser, no canvas): each lab's latency over time with its throttled periods marked, and
 * the group's memory as clients were added, against the cap.
 */

import type { TopLevelSpec } from 'vega-lite';
import { barChart, VEGA_SCHEMA, type Chart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check } from '../kit/findings.js';
import { mib as MiB, slug } from '../kit/format.js';
import type { ReportFile } from '../kit/report-file.js';
import { once, type Table } from '../kit/table.js';
import type { CgroupVersion } from './cgroup.js';
import { caseName, type CpuCaseResult, type CpuConfig, type CpuLabRun } from './cpu.js';
import type { MemoryConfig, MemoryLabRun } from './memory.js';

export const LIMITS_SCHEMA = 1;

export interface LimitsReport extends ReportFile<'limits', typeof LIMITS_SCHEMA> {
  readonly cgroup: { readonly version: CgroupVersion; readonly probe: string };
  readonly config: { readonly cpu: CpuConfig; readonly memory: MemoryConfig };
  readonly cpu: readonly CpuLabRun[];
  readonly memory: readonly MemoryLabRun[];
}

const ms = (us: number) => (us / 1000).toFixed(1);
const KiB = (bytes: number) => (bytes / 1024).toFixed(0);
const plural = (n: number, one: string) => `${n} ${n === 1 ? one : `${one}s`}`;

/** The case a reader compares with no limit: half a core at the kernel's default period. */
const HALF = { cores: 0.5, periodUs: 100_000 };
const isCase = (c: { cores: number | null; periodUs: number }, want: { cores: number | null; periodUs: number }) => c.cores === want.cores && (c.cores === null || c.periodUs === want.periodUs);

/** The charts beside the report: each lab's latency over time, and connections held under the cap. */
function limitsCharts(report: LimitsReport): Chart[] {
  return [
    ...report.cpu.map((run) => ({ name: `cpu-${slug(run.title)}`, title: `${run.title}: latency over time under each quota`, spec: latencySpec(run, report.config.cpu.bucketMs) })),
    ...(report.memory.length ? [{ name: 'memory', title: 'The group\'s memory as clients were added, under the cap', spec: memorySpec(report) }] : []),
  ];
}

export function renderLimits(report: LimitsReport): Page {
  const charts = limitsCharts(report);
  const { cpu: cpuConfig, memory: memoryConfig } = report.config;
  const rows = report.cpu.map((run) => ({ run, free: run.cases.find((c) => c.cores === null), half: run.cases.find((c) => isCase(c, HALF)), memory: report.memory.find((m) => m.lab === run.lab) }));
  const capMiB = memoryConfig.capBytes / 2 ** 20;
  const table: Table = {
    rowHeader: 'lab',
    columns: [
      { header: 'p99 ms, no limit', unit: 'ms', explain: `p99 latency of ${cpuConfig.ratePerSec} paced requests/s, each ${cpuConfig.workUs} µs of CPU (one run each: nothing is ranked)` },
      { header: 'p99 ms, 0.5 core', unit: 'ms', better: 'lower', explain: 'the same load under a quota of half a core per 100 ms period' },
      { header: 'periods throttled, 0.5 core', unit: 'pct', explain: "share of the group's CFS periods in which it was stopped (cpu.stat)" },
      { header: 'threads', unit: 'count' },
      { header: `clients held under ${capMiB.toFixed(0)} MiB`, unit: 'count', better: 'higher', explain: `most clients held at once with the group capped at ${capMiB.toFixed(0)} MiB, and what ended the run` },
    ],
    rows: rows.map(({ run, free, half, memory }) => ({
      label: run.title,
      cells: [
        free ? { summary: once(free.load.latencyUs.p99 / 1000) } : undefined,
        half ? { summary: once(half.load.latencyUs.p99 / 1000) } : undefined,
        half && half.throttle.periods ? { summary: once((100 * half.throttle.throttled) / half.throttle.periods) } : undefined,
        { summary: once(Math.max(...run.cases.map((c) => c.threads))) },
        // The most at once, at any step: a server the OOM killer ended holds none at the end (lab 08's one process).
        memory ? { summary: once(Math.max(memory.held, ...memory.steps.map((step) => step.held))), text: OUTCOME[memory.outcome.kind] } : undefined,
      ],
    })),
  };
  const measured = rows.filter((r) => r.free && r.half);
  return {
    intro: 'Each lab in a cgroup of its own: the same paced request rate under CPU quotas of 1, 0.5 and 0.25 core at a 100 ms and a 10 ms period, then clients added under a memory cap.',
    summary: table,
    chart: barChart('summary', 'p99 latency at half a core (ms)', 'ms', table.rows.map((r) => ({ label: r.label, value: r.cells[1]?.summary?.median }))),
    findings: [
      check('p99 at half a core within 2× of no limit', measured, (r) => r.run.title, (r) => r.half!.load.latencyUs.p99 <= 2 * r.free!.load.latencyUs.p99),
      check('never throttled at half a core while using less than it on average', measured.filter((r) => Number(cores(r.half!)) < 0.5), (r) => r.run.title, (r) => r.half!.throttle.throttled === 0),
      ...(report.memory.length ? [check(`held every client up to the ceiling under ${capMiB.toFixed(0)} MiB`, report.memory, (m) => m.title, (m) => m.outcome.kind === 'ceiling')] : []),
    ],
    method: [`cgroups: ${report.cgroup.probe}.`],
    detail: [...(report.cpu.length ? renderCpu(report.cpu, cpuConfig, charts) : []), ...(report.memory.length ? renderMemory(report.memory, memoryConfig) : [])],
    charts,
  };
}

function renderCpu(runs: readonly CpuLabRun[], config: CpuConfig, charts: readonly Chart[]): string[] {
  const cases = runs[0]!.cases;
  const half = runs.map((run) => ({ run, half: run.cases.find((c) => isCase(c, HALF)) }));
  const gen = runs.flatMap((run) => run.cases).reduce((a, c) => ({ cpu: a.cpu + c.loadGenCpuMs, server: a.server + c.serverCpuMs, answered: a.answered + c.load.answered }), { cpu: 0, server: 0, answered: 0 });
  return [
    '## CPU: the same load under a quota',
    '',
    `Each lab ran in its own cgroup and got the same offered load from outside it: ${config.ratePerSec} HTTP requests per second for ${config.seconds} s per case, ` +
      `Poisson arrivals from a fixed seed (the very same schedule in every case), over ${config.connections} keep-alive connections (1 for a serial lab), each request ` +
      `costing ${config.workUs} µs of CPU in the server (\`--work-us ${config.workUs}\`). The load is open-loop (bench/load/paced.ts): a request is sent when it is due ` +
      'whether or not the server has answered the last one, and its latency counts from its due time, so a stall shows in full. Labs with a cores flag ran with ' +
      `${config.cores} (the machine's cores). The quota is set on the running lab between cases, in this order: ${cases.map((c) => caseName(c)).join(', ')}.`,
    '',
    '**Throttled periods** and **throttled ms** come from the group\'s cpu.stat over the case (nr_throttled, and throttled_time, which sums over the CPUs the group was ' +
      'stopped on); **achieved** is answers inside the window per second, against the offered rate; **server CPU** the lab\'s tree, in cores; ' +
      '**threads** every thread of the lab\'s processes, Node\'s own included (V8\'s compiler and collector helpers, libuv\'s pool): a one-loop lab shows about a dozen, and still runs its requests on one.',
    '',
    `The load generator used ${gen.answered ? ms((gen.cpu * 1000) / gen.answered) : '–'} ms of CPU per request over the whole run; the servers used ${gen.answered ? ms((gen.server * 1000) / gen.answered) : '–'} ms.`,
    '',
    '### p99 latency (ms) by quota',
    '',
    `| lab | threads | ${cases.map(caseName).join(' | ')} |`,
    `|---|---:|${cases.map(() => '---:').join('|')}|`,
    ...runs.map((run) => `| ${run.title} | ${Math.max(...run.cases.map((c) => c.threads))} | ${run.cases.map((c) => ms(c.load.latencyUs.p99)).join(' | ')} |`),
    '',
    ...sharedQuota(half),
    '### Every case',
    '',
    '| lab | limit | p50 / p99 / max (ms) | achieved / offered (req/s) | unanswered / errors | throttled periods | throttled ms | server CPU (cores) |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...runs.flatMap((run) =>
      run.cases.map((c) => `| ${run.title} | ${caseName(c)} | ${ms(c.load.latencyUs.p50)} / ${ms(c.load.latencyUs.p99)} / ${ms(c.load.latencyUs.max)} | ${c.load.achievedPerSec.toFixed(0)} / ${c.load.offeredPerSec} | ${c.load.unanswered} / ${c.load.errors} | ${c.throttle.throttled} of ${c.throttle.periods} | ${c.throttle.throttledMs.toFixed(0)} | ${cores(c)} |`),
    ),
    '',
    '### Latency over time',
    '',
    `Each chart: one row per case, the p99 of the requests due in each ${config.bucketMs} ms (log scale), with the ${config.bucketMs} ms slices in which the group was throttled shaded red.`,
    '',
    ...charts.filter((chart) => chart.name.startsWith('cpu-')).flatMap((chart) => [`![${chart.title}](limits-${chart.name}.svg)`, '']),
  ];
}

const cores = (c: CpuCaseResult) => (c.serverCpuMs / (c.load.durationMs || 1)).toFixed(2);

/** Fewer clients than this and a per-connection figure is mostly the noise of one weighing. */
const MIN_CLIENTS_PER_FIGURE = 5;

/** What ended a memory run, in the Summary's and the memory table's words. */
const OUTCOME: Record<MemoryLabRun['outcome']['kind'], string> = {
  ceiling: 'held them all (ceiling)',
  time: 'out of time',
  'server-died': 'the server died',
  'oom-kill': 'OOM kill',
  lost: 'clients lost',
  refused: 'clients refused',
  unanswered: 'new clients unanswered',
};

/**
 * The point of the half-core case in one paragraph: which groups were throttled although they
 * used less than their quota on average (several threads or processes spending one quota at once)
 * and which were not, from the numbers.
 */
function sharedQuota(rows: readonly { run: CpuLabRun; half?: CpuCaseResult }[]): string[] {
  const measured = rows.filter((r): r is { run: CpuLabRun; half: CpuCaseResult } => r.half !== undefined);
  const below = measured.filter((r) => Number(cores(r.half)) < 0.5);
  const throttled = below.filter((r) => r.half.throttle.throttled > 0);
  const spared = below.filter((r) => r.half.throttle.throttled === 0);
  if (below.length === 0) return [];
  const names = (list: typeof measured) => list.map((r) => `${r.run.title} (${r.half.throttle.throttled} of ${r.half.throttle.periods} periods, ${cores(r.half)} core used)`).join(', ');
  return [
    `At half a core (0.5 core per 100 ms period), these groups used less than their quota on average. ${throttled.length ? `Throttled all the same: ${names(throttled)}` : 'None was throttled'}${spared.length ? `; never throttled: ${names(spared)}` : ''}. ` +
      'A quota is CPU time per period for the whole group: one busy thread spends it at the pace of the clock (50 ms of quota last it 50 ms), two busy at once twice ' +
      'as fast (25 ms), and then every thread of the group waits for the next period, however idle the average looks.',
    '',
  ];
}

function renderMemory(runs: readonly MemoryLabRun[], config: MemoryConfig): string[] {
  const outcome = (run: MemoryLabRun) => {
    switch (run.outcome.kind) {
      case 'ceiling':
        return `nothing: held all ${config.ceiling} (the ceiling)`;
      case 'time':
        return `nothing within ${config.maxSeconds} s`;
      default:
        return `${OUTCOME[run.outcome.kind]}: ${run.outcome.detail}`;
    }
  };
  const perConnection = (run: MemoryLabRun) => {
    // The last step with the whole tree weighed; too few clients to divide by give noise, not a figure.
    const last = [...run.steps].reverse().find((s) => s.held > 0 && s.rssBytes > 0 && s.pssBytes !== null);
    if (!last || last.held < MIN_CLIENTS_PER_FIGURE || run.rest.pssBytes === null) return '–';
    const each = (grown: number) => KiB(Math.max(0, grown) / last.held);
    return `${each(last.group.usageBytes - run.rest.usageBytes)} / ${each(last.rssBytes - run.rest.rssBytes)} / ${each(last.pssBytes! - run.rest.pssBytes)}`;
  };
  return [
    `## Memory: clients added under a ${MiB(config.capBytes)} MiB cap`,
    '',
    `Each lab ran (echo protocol, its own defaults) in a group capped at ${MiB(config.capBytes)} MiB. Clients were added in steps (each a quarter more, at least one) up to ` +
      `${config.ceiling}; after each step every connected client sent a probe of its own and checked that exactly that came back. The run stops at the first step in which ` +
      'anything failed: the server process ended, the OOM killer ran in the group, a client that had had its echoes lost its connection, a new client was refused, or a new ' +
      'client got no answer.',
    '',
    '**held** clients whose last probe came back; **ended by** the first failure; **lost** clients that had had echoes and then lost their connection; **refused** clients whose ' +
      'connection failed or was closed before any echo; **waiting** clients still connected whose last probe (after the run stopped) got no answer; **group memory** what the cgroup charged at rest and at the last step (its limit counts this); **per connection** the ' +
      `growth over rest divided by the clients held at the last step weighed (with ${MIN_CLIENTS_PER_FIGURE} or more), in KiB: group charge / tree RSS / tree PSS.`,
    '',
    '| lab | held | ended by | lost | refused | waiting | OOM kills | group memory rest → last (MiB) | per connection (KiB) |',
    '|---|---:|---|---:|---:|---:|---:|---|---|',
    ...runs.map((run) => `| ${run.title} | ${run.held} | ${outcome(run)} | ${run.lostClients.length} | ${run.refusedClients} | ${run.waiting} | ${run.final.oomKills} | ${MiB(run.rest.usageBytes)} → ${MiB(run.final.usageBytes)} | ${perConnection(run)} |`),
    '',
    '![The group\'s memory as clients were added, under the cap](limits-memory.svg)',
    '',
    ...runs.flatMap((run) => lostAndLogged(run)),
  ];
}

/** Which clients lost what, and what the server said, for a lab where anything failed. */
function lostAndLogged(run: MemoryLabRun): string[] {
  if (run.lostClients.length === 0 && run.serverLog.length === 0 && run.outcome.kind === 'ceiling') return [];
  const lost = run.lostClients.map(
    (c) => `- client ${c.client} (joined in step ${c.joined}): ${c.how} ${(c.atMs / 1000).toFixed(1)} s into the run, after ${c.echoes} echoed probes; ${c.unansweredBytes ? `${c.unansweredBytes} bytes of its last probe unanswered` : 'every byte it had sent had come back'}`,
  );
  return [
    `### ${run.title}`,
    '',
    `Ended by ${OUTCOME[run.outcome.kind]}${'detail' in run.outcome ? ` (${run.outcome.detail})` : ''}. By the end the server process ${run.serverExit ? `had ended (${run.serverExit.signal ? `killed by ${run.serverExit.signal}` : `exit status ${run.serverExit.code}`})` : 'was still running'}; ` +
      `${plural(run.held, 'client')} still echoed a last probe, ${run.waiting} connected ${run.waiting === 1 ? 'one' : 'ones'} did not answer it; the group counted ${plural(run.final.oomKills, 'OOM kill')} and ${plural(run.final.limitHits, 'allocation')} at the limit.`,
    '',
    ...(run.serverExit && run.held > 0
      ? [`The server process was gone, yet ${plural(run.held, 'client')} still echoed: each is served by a process of its own, which outlived the one that accepted it (and nothing accepts new clients any more).`, '']
      : []),
    ...(lost.length ? ['Clients that lost their connection:', '', ...lost, ''] : ['No client that had had an echo lost its connection.', '']),
    ...(run.serverLog.length ? ['What the server logged (routine per-client lines left out; repeats counted):', '', '```', ...run.serverLog.map((l) => (l.count > 1 ? `${l.line}   (×${l.count})` : l.line)), '```', ''] : ['The server logged nothing beyond its routine per-client lines.', '']),
  ];
}

function latencySpec(run: CpuLabRun, bucketMs: number): TopLevelSpec {
  const values = run.cases.flatMap((c, order) => {
    const throttled = new Map(c.throttleOverTime.map((t) => [t.tMs, t]));
    return c.buckets.map((b) => ({
      case: caseName(c),
      order,
      t: b.tMs / 1000,
      t2: (b.tMs + bucketMs) / 1000,
      p99: b.answered ? Math.max(0.01, b.p99Us / 1000) : null,
      throttled: (throttled.get(b.tMs)?.throttled ?? 0) > 0 ? 1 : 0,
    }));
  });
  const order = run.cases.map(caseName);
  return {
    $schema: VEGA_SCHEMA,
    title: { text: `${run.title}: p99 latency per ${bucketMs} ms, throttled slices shaded`, anchor: 'start' },
    data: { values },
    facet: { row: { field: 'case', type: 'nominal', sort: order, header: { title: null, labelAngle: 0, labelAlign: 'left', labelFontSize: 11 } } },
    spec: {
      width: 520,
      height: 55,
      layer: [
        {
          transform: [{ filter: 'datum.throttled > 0' }],
          mark: { type: 'rect', color: '#d62728', opacity: 0.25 },
          encoding: { x: { field: 't', type: 'quantitative' }, x2: { field: 't2' } },
        },
        {
          transform: [{ filter: 'datum.p99 !== null' }],
          mark: { type: 'line', color: '#1f77b4', strokeWidth: 1.2, point: false },
          encoding: {
            x: { field: 't', type: 'quantitative', title: 'seconds into the case' },
            y: { field: 'p99', type: 'quantitative', scale: { type: 'log' }, title: 'p99 ms', axis: { values: [0.1, 1, 10, 100, 1000, 10000], format: '~s', gridOpacity: 0.5 } },
          },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
    config: { font: 'sans-serif', view: { stroke: '#ccc' } },
  };
}

/** The group's memory as clients were added, against the cap (how many each lab held is the Summary's column). */
function memorySpec(report: LimitsReport): TopLevelSpec {
  const usage = report.memory.flatMap((run) => run.steps.map((s) => ({ lab: run.title, clients: s.clients, usage: s.group.usageBytes / 2 ** 20 })));
  const cap = report.config.memory.capBytes / 2 ** 20;
  return {
    $schema: VEGA_SCHEMA,
    title: { text: `Group memory as clients were added, under a ${cap.toFixed(0)} MiB cap`, anchor: 'start' },
    config: { font: 'sans-serif' },
    width: 420,
    height: 220,
    layer: [
      {
        data: { values: usage },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'clients', type: 'quantitative', scale: { type: 'log' }, title: 'clients connected (log scale)' },
          y: { field: 'usage', type: 'quantitative', title: 'MiB charged to the group' },
          color: { field: 'lab', type: 'nominal', title: 'lab', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 260 } },
        },
      },
      {
        data: { values: [{ cap }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#d62728' },
        encoding: { y: { field: 'cap', type: 'quantitative' } },
      },
      {
        data: { values: [{ cap, label: `cap ${cap.toFixed(0)} MiB` }] },
        mark: { type: 'text', color: '#d62728', align: 'left', baseline: 'bottom', dy: -2, x: 4 },
        encoding: { y: { field: 'cap', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };
}
