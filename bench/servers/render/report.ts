/**
 * Renders results/bench.json from that file alone: a Summary row per server with the figure each
 * scenario teaches, then one section per scenario (its method, its findings as data, its chart,
 * a table per cell). Tables and findings come from the kit, so "best" means the same here as in
 * every report: never a starved run, a capped throughput, or a figure whose runs spread too wide.
 */

import { barChart, type Chart } from '../../kit/chart.js';
import type { Page } from '../../kit/experiment.js';
import { capital, columnFindings, say, type Finding } from '../../kit/findings.js';
import { formatValue } from '../../kit/format.js';
import { summarize, type Summary } from '../../kit/stats.js';
import { renderColumnNotes, renderTable, type Cell, type Column as KitColumn, type Row, type Table } from '../../kit/table.js';
import type { BenchResults, CellResult, CellSpec, MetricName, ScenarioId, ScenarioResult, TargetInfo } from '../results.js';
import { sectionSpec, type AnyColumn } from './columns.js';
import { idleParagraphs } from './million.js';

/** Paragraphs a scenario's section adds after its findings, from its own results. */
const PARAGRAPHS: Partial<Record<ScenarioId, (scenario: ScenarioResult, results: BenchResults) => string[]>> = { idle: idleParagraphs };

/** The load generator counts as saturated from this share of one core. */
export const SATURATED_PCT = 90;

interface Measured {
  readonly target: TargetInfo;
  readonly result: CellResult | undefined;
}

const metricOf = (m: Measured, metric: MetricName): Summary | undefined =>
  m.result && m.result.runs.length > 0 ? summarize(m.result.runs.map((r) => r.metrics[metric])) : undefined;

/** Some connection got nothing while another was served: the total is not a fair share of anything. */
export function starved(m: Measured): boolean {
  const fewest = metricOf(m, 'fewest');
  const most = metricOf(m, 'most');
  return fewest !== undefined && most !== undefined && fewest.median === 0 && most.median > 0;
}

const saturated = (m: Measured) => (metricOf(m, 'loadGenCorePct')?.max ?? 0) >= SATURATED_PCT;

function statusText(result: CellResult | undefined): string | undefined {
  if (!result) return 'not run';
  if (result.status === 'ok') return undefined;
  const prefix = { cannot: 'cannot hold: ', 'not-applicable': 'n/a: ', unavailable: 'not run: ', 'not-attempted': '', failed: 'failed: ' }[result.status];
  return `${prefix}${result.reason ?? result.status}`;
}

/** A row per server the scenario ran (a server it left out is listed once in its section instead). */
function measuredIn(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[]): Measured[] {
  const left = new Set((scenario.leftOut ?? []).map((l) => l.target));
  return targets.filter((t) => !left.has(t.id)).map((target) => ({ target, result: scenario.results.find((r) => r.target === target.id && r.cell === cell.key) }));
}

const kitColumn = (c: AnyColumn): KitColumn => ({
  header: c.header,
  unit: c.unit,
  ...(c.better && c.over !== 'sum' && !c.with ? { better: c.better } : {}),
  ...(c.unit === 'rate' ? { throughput: true } : {}),
  ...(c.explain ? { explain: c.explain } : {}),
});

function cellOf(m: Measured, column: AnyColumn): Cell | undefined {
  const sum = (metric: MetricName) => m.result?.runs.reduce<number | undefined>((t, r) => (typeof r.metrics[metric] === 'number' ? (t ?? 0) + r.metrics[metric]! : t), undefined);
  if (column.over === 'sum' || column.with) {
    const values = [column.metric, ...(column.with ?? [])].map((metric) => {
      const v = column.over === 'sum' ? sum(metric) : metricOf(m, metric)?.median;
      return v === undefined ? '–' : formatValue(v, column.unit);
    });
    // All zero (no errors, no connection starved of a share): one "0" says it.
    return { text: values.every((v) => v === '0') ? '0' : values.join(' / ') };
  }
  const summary = metricOf(m, column.metric);
  if (!summary) return undefined;
  if (column.metric === 'loadGenCorePct' && saturated(m)) return { summary, text: '⚠' };
  // A column nothing is ranked by shows the runs' median alone (their spread is in the JSON).
  return column.better ? { summary } : { text: formatValue(summary.median, column.unit) };
}

/**
 * A scenario's columns as its tables show them. Given the scenario's results, a metric none of its runs recorded (an older file, measured
 * before the metric existed) has no column.
 */
const shownColumns = (id: ScenarioId, scenario?: ScenarioResult) => {
  const recorded = scenario && new Set(scenario.results.flatMap((r) => r.runs.flatMap((run) => Object.keys(run.metrics))));
  const measured = (metric: MetricName) => !recorded || recorded.size === 0 || recorded.has(metric);
  return sectionSpec(id).columns.filter((c) => measured(c.metric));
};

/** The section's method: an older file's own where the spec says how it was measured then. */
function methodOf(scenario: ScenarioResult): string {
  const { method, earlier } = sectionSpec(scenario.id);
  if (!earlier) return method;
  const recorded = scenario.results.some((r) => r.runs.some((run) => earlier.metric in run.metrics));
  const any = scenario.results.some((r) => r.runs.length > 0);
  return any && !recorded ? earlier.method : method;
}

/** One cell of a scenario as a kit table. */
function cellTable(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[]): Table {
  const columns = shownColumns(scenario.id, scenario);
  return {
    columns: columns.map(kitColumn),
    rows: measuredIn(scenario, cell, targets).map((m): Row => {
      const status = statusText(m.result);
      // A capacity level measured but not held still shows what was measured.
      const figures = !status || (m.result?.status === 'cannot' && m.result.runs.length > 0);
      return {
        label: status && figures ? `${m.target.label} (cannot hold)` : m.target.label,
        // A level not held left connections unanswered: none of its figures is ranked.
        starved: starved(m) || m.result?.status === 'cannot',
        saturated: saturated(m),
        cells: figures ? columns.map((c) => cellOf(m, c)) : [{ text: status }],
      };
    }),
  };
}

/** The cell a scenario's findings and chart speak of: the last that its first chart spec picks. */
function headlineCell(scenario: ScenarioResult, results: BenchResults): CellSpec | undefined {
  const chart = sectionSpec(scenario.id).charts[0];
  return chart ? scenario.cells.filter((c) => chart.cell(c.params, results.settings)).at(-1) : scenario.cells.at(-1);
}

/** The findings of a scenario: its headline column and its CPU per unit, ranked by the kit's rule. */
function scenarioFindings(scenario: ScenarioResult, results: BenchResults): Finding[] {
  const cell = headlineCell(scenario, results);
  if (!cell) return [];
  const table = cellTable(scenario, cell, results.targets);
  const columns = shownColumns(scenario.id, scenario);
  const pick = [...new Set([sectionSpec(scenario.id).charts[0]?.metric ?? columns.find((c) => c.better)?.metric, 'cpuUsPerUnit' as MetricName])];
  const found = pick.flatMap((metric) => {
    const i = columns.findIndex((c) => c.metric === metric && c.better);
    return i < 0 ? [] : columnFindings(table, i, `${columns[i]!.header} at ${cell.title}`);
  });
  // A starved row is said once, not once per column.
  const seen = new Set<string>();
  found.sort((a, b) => Number(b.kind === 'leader' || b.kind === 'tie') - Number(a.kind === 'leader' || a.kind === 'tie'));
  return found.filter((f) => (f.kind === 'starved' ? !seen.has(f.kind) && seen.add(f.kind) !== undefined : true))
    .slice(0, 3);
}

function scenarioChart(scenario: ScenarioResult, results: BenchResults): Chart | undefined {
  if (scenario.id === 'capacity') {
    const bars = results.targets.map((t) => {
      const held = scenario.cells.filter((c) => scenario.results.find((r) => r.target === t.id && r.cell === c.key)?.status === 'ok').at(-1);
      return { label: t.label, value: held?.params.connections };
    });
    return bars.some((b) => b.value !== undefined) ? barChart('capacity', 'Most idle connections held, every one echoing', 'connections', bars) : undefined;
  }
  const spec = sectionSpec(scenario.id).charts[0];
  const cell = headlineCell(scenario, results);
  if (!spec || !cell) return undefined;
  const bars = measuredIn(scenario, cell, results.targets).map((m) => ({
    label: m.target.label,
    value: m.result?.status === 'ok' ? metricOf(m, spec.metric)?.median : undefined,
    ...(starved(m) ? { note: 'starved: not ranked' } : spec.metric.endsWith('PerSec') && saturated(m) ? { note: 'load generator capped' } : {}),
  }));
  return bars.some((b) => b.value !== undefined) ? barChart(scenario.id, `${spec.title}, ${cell.title}`, spec.axis, bars) : undefined;
}

/** The figure of `metric` for each target in `cell`, as Summary cells; flags as in the cell's table. */
function summaryColumn(results: BenchResults, id: ScenarioId, cellPick: (s: ScenarioResult) => CellSpec | undefined, metric: MetricName) {
  const scenario = results.scenarios.find((s) => s.id === id);
  const cell = scenario && cellPick(scenario);
  return (target: TargetInfo): Cell | undefined => {
    if (!scenario || !cell) return undefined;
    const m = { target, result: scenario.results.find((r) => r.target === target.id && r.cell === cell.key) };
    const summary = m.result?.status === 'ok' ? metricOf(m, metric) : undefined;
    if (!summary) return m.result?.status === 'cannot' ? { text: 'not held' } : m.result?.status === 'not-attempted' ? { text: 'not attempted' } : undefined;
    return { summary, ...(starved(m) ? { starved: true, text: '(starved)' } : {}), ...(saturated(m) ? { saturated: true, ...(metric.endsWith('PerSec') ? { text: '⚠' } : {}) } : {}) };
  };
}

/** The Summary's columns: one figure per scenario that carries its lesson, at the cell that shows it best. */
function summary(results: BenchResults): Table {
  // The most connections any server held: a level the machine did not allow (a descriptor limit
  // it cannot raise) would be a column of "not attempted".
  const mostHeld = (s: ScenarioResult) => [...s.cells].reverse().find((cell) => s.results.some((r) => r.cell === cell.key && r.status === 'ok'));
  const echoCell = (s: ScenarioResult) => headlineCell(s, results);
  const columns: { column: KitColumn; cell: (t: TargetInfo) => Cell | undefined }[] = [];
  const add = (id: ScenarioId, header: (cell: CellSpec) => string, pick: (s: ScenarioResult) => CellSpec | undefined, metric: MetricName, unit: KitColumn['unit'], better: 'higher' | 'lower', explain: string) => {
    const scenario = results.scenarios.find((s) => s.id === id);
    const cell = scenario && pick(scenario);
    if (!cell) return;
    columns.push({ column: { header: header(cell), unit, better, ...(unit === 'rate' ? { throughput: true } : {}), explain }, cell: summaryColumn(results, id, pick, metric) });
  };
  add('echo', (c) => `CPU µs/round trip, ${c.title}`, echoCell, 'cpuUsPerUnit', 'cpuUs', 'lower', "server CPU per echoed round trip (raw echo): what the model costs, fair whoever set the pace");
  add('idle', (c) => `CPU µs/busy round trip, ${c.title.split(' + ')[0]}`, mostHeld, 'cpuUsPerUnit', 'cpuUs', 'lower', 'the same beside the most idle connections: what idle clients cost a busy server');
  add('capacity', (c) => `memory/idle conn, ${c.title}`, mostHeld, 'bytesPerConnection', 'bytes', 'lower', "growth of the server tree's memory per idle connection held (PSS)");
  add('cpu', () => 'CPU-bound req/s, all cores', (s) => s.cells[0], 'requestsPerSec', 'rate', 'higher', 'HTTP requests that each spin the CPU, with every core allowed');
  add('churn', () => 'connections/s', (s) => s.cells[0], 'connectionsPerSec', 'rate', 'higher', 'connect, one echo, close, over and over');
  return {
    columns: columns.map((c) => c.column),
    rows: results.targets.filter((t) => !t.unavailable).map((target) => ({ label: target.label, cells: columns.map((c) => c.cell(target)) })),
  };
}

export function renderReport(results: BenchResults): Page {
  const table = summary(results);
  const findings = table.columns.flatMap((column, i) => columnFindings(table, i, column.header).filter((f) => f.kind === 'leader' || f.kind === 'tie'));
  const starvedRows = table.columns.flatMap((_, i) => columnFindings(table, i, table.columns[i]!.header).filter((f) => f.kind === 'starved'));
  const charts = results.scenarios.map((s) => scenarioChart(s, results)).filter((c): c is Chart => c !== undefined);
  return {
    intro: 'Every lab (in the variants that matter), plain Node and a C reference under the same load: raw echo, idle connections beside busy ones, HTTP, CPU-bound requests, connection churn and idle capacity, with the CPU and memory of each server\'s whole process tree.',
    summary: table,
    chart: barChart('summary', table.columns[0]?.header ?? 'CPU µs per round trip', 'CPU µs', table.rows.map((r) => ({ label: r.label, value: r.cells[0]?.summary?.median, ...(r.cells[0]?.starved ? { note: 'starved: not ranked' } : {}) }))),
    findings: [...findings.slice(0, 4), starvedRows[0]],
    method: howItRan(results),
    detail: [...results.scenarios.flatMap((scenario, i) => section(scenario, i + 1, results, charts)), ...columnNotes(results)],
    charts,
  };
}

function howItRan(results: BenchResults): string[] {
  const s = results.settings as Record<string, unknown>;
  const { cpus } = results;
  const unavailable = results.targets.filter((t) => t.unavailable);
  return [
    `Each model is described in its lab's README${unavailable.length ? `; not run: ${unavailable.map((t) => `${t.label} (${t.unavailable})`).join(', ')}` : ''}.`,
    `Each server was started fresh for each scenario (for capacity: for each level and run); in each cell the load generator warmed up (at least ${s.warmup} s, until every connection was answered once) and measured ` +
      `${s.repeats === 1 ? `one window of ${s.duration} s: a single run has no spread, so nothing is ranked` : `${s.repeats} windows of ${s.duration} s, the cell's ${s.repeats} runs: tables show the median and ±half the range`}.`,
    "**Bold** marks the best figure of a column, those no different from it within the runs' spread and any ranked between them; never a run that left connections unanswered, a throughput the load generator capped (⚠: it used 90% or more of its core), a figure whose runs spread wider than itself, or one whose spread is wider than its distance from the figures after it.",
    cpus.loadGenerator
      ? `The load generator ran on core ${cpus.loadGenerator}, each server's whole process tree on ${cpus.server}, pinned with \`taskset\`; only the CPU-bound scenario let the server use every core (${cpus.all}), so only there does a multi-core model show what it is for.`
      : 'Server and load generator were not pinned to separate cores: they shared the CPU.',
    `The whole run took ${formatValue(results.wallSeconds, 'count')} s${results.loadAverage ? `; the 1-minute load average was ${results.loadAverage.start.toFixed(1)} at the start and ${results.loadAverage.end.toFixed(1)} at the end` : ''}.`,
  ];
}

function section(scenario: ScenarioResult, number: number, results: BenchResults, charts: readonly Chart[]): string[] {
  const spec = sectionSpec(scenario.id);
  const out = [`## ${number}. ${spec.heading}`, '', methodOf(scenario), ''];
  if (scenario.leftOut?.length) {
    const byReason = new Map<string, string[]>();
    for (const { target, reason } of scenario.leftOut) byReason.set(reason, [...(byReason.get(reason) ?? []), results.targets.find((t) => t.id === target)?.label ?? target]);
    out.push(`Not run in this scenario: ${[...byReason].map(([reason, labels]) => `${labels.join(', ')} (${reason})`).join('; ')}.`, '');
  }
  if (scenario.serverCpus && results.cpus.loadGenerator) out.push(`Cores: server on ${scenario.serverCpus}, load generator on ${results.cpus.loadGenerator}.`, '');
  out.push(...scenarioFindings(scenario, results).map((f) => `- ${say(f)}`), '');
  const chart = charts.find((c) => c.name === scenario.id || (scenario.id === 'capacity' && c.name === 'capacity'));
  if (chart) out.push(`![${chart.title}](bench-${chart.name}.svg)`, '');
  // Levels no server reached (every one stopped below it, or the machine did not allow it) are
  // one line, not a table of "not attempted".
  const reached = scenario.cells.filter((cell) => scenario.results.some((r) => r.cell === cell.key && r.status !== 'not-attempted'));
  const unreached = scenario.cells.filter((cell) => !reached.includes(cell));
  if (unreached.length > 0) out.push(`Not attempted by any server: ${unreached.map((cell) => cell.title).join(', ')} (each server's row at the level before says why it stopped there).`, '');
  // The headline cell (the one the findings and the chart speak of) gets the whole table; the
  // others one table together, with the figure that carries their lesson: the model's CPU per
  // unit (the whole tables are in the JSON).
  const headline = headlineCell(scenario, results);
  const others = reached.filter((cell) => cell !== headline);
  for (const cell of headline ? [headline] : reached) {
    const table = cellTable(scenario, cell, results.targets);
    out.push(`### ${cell.title}`, '', renderTable(withoutZeroColumns(table)), '');
    // Notes grouped by what they say (their figures in parentheses left to the JSON): one line each.
    const byNote = new Map<string, string[]>();
    for (const m of measuredIn(scenario, cell, results.targets)) {
      const notes = [...(m.result?.status === 'cannot' && m.result.runs.length > 0 ? [statusText(m.result)!] : []), ...(m.result?.runs ?? []).flatMap((run) => run.notes)];
      for (const note of new Set(notes.map((n) => n.replace(/ \([^()]*\)$/, '').replace(/\d[\d,.]* of \d[\d,.]*/g, 'some')))) byNote.set(note, [...(byNote.get(note) ?? []), m.target.label]);
    }
    if (byNote.size) out.push(...[...byNote].map(([note, labels]) => `- ${note}: ${labels.join(', ')}.`), '');
  }
  if (headline && others.length > 0) out.push(...otherCells(scenario, others, results.targets));
  out.push(...(PARAGRAPHS[scenario.id]?.(scenario, results) ?? []));
  return out;
}

/** One table of the scenario's other cells: per cell, its CPU per unit (or its first ranked column). */
function otherCells(scenario: ScenarioResult, cells: readonly CellSpec[], targets: readonly TargetInfo[]): string[] {
  const columns = shownColumns(scenario.id, scenario);
  const column = columns.find((c) => c.metric === 'cpuUsPerUnit') ?? columns.find((c) => c.better);
  if (!column) return [];
  const rows = new Map<string, Row>();
  const table: Table = {
    columns: cells.map((cell) => kitColumn({ ...column, header: cell.title })),
    rows: [],
  };
  for (const [i, cell] of cells.entries()) {
    for (const m of measuredIn(scenario, cell, targets)) {
      const row = rows.get(m.target.id) ?? { label: m.target.label, cells: cells.map(() => undefined) };
      const cellsOf = [...row.cells];
      // A level not held keeps what was measured, said so and never ranked, as in its own table.
      const notHeld = m.result?.status === 'cannot' && m.result.runs.length > 0;
      const status = statusText(m.result);
      const figure = cellOf(m, column);
      cellsOf[i] = notHeld && figure ? { ...figure, text: '(cannot hold)' } : status ? { text: status.split(':')[0]! } : figure;
      rows.set(m.target.id, { ...row, cells: cellsOf, ...(starved(m) || notHeld || row.starved ? { starved: true } : {}) });
    }
  }
  return ['### The other cells', '', `${capital(column.header)} in each:`, '', renderTable({ ...table, rows: [...rows.values()] }), ''];
}

/** A column that reads "0" in every row (no errors, no connection without a share) says it once, under the table. */
function withoutZeroColumns(table: Table): Table {
  // Rows with figures decide; a table of status rows alone (every server stopped below it) keeps its columns.
  const figured = table.rows.filter((row) => row.cells.length !== 1);
  const zero = table.columns.map((_, c) => figured.length > 0 && figured.every((row) => row.cells[c]?.text === '0'));
  if (!zero.includes(true)) return table;
  return { ...table, columns: table.columns.filter((_, c) => !zero[c]), rows: table.rows.map((row) => (row.cells.length === 1 ? row : { ...row, cells: row.cells.filter((_, c) => !zero[c]) })) };
}

/** An explanation's first clause, its parentheses closed. */
function firstClause(text: string): string {
  const clause = text.split(/: |; /)[0]!;
  return clause.split('(').length > clause.split(')').length ? `${clause})` : clause;
}

/** Every column of every scenario, explained once. */
function columnNotes(results: BenchResults): string[] {
  const seen = new Map<string, KitColumn>();
  for (const scenario of results.scenarios) for (const column of shownColumns(scenario.id, scenario).map(kitColumn)) if (column.explain && !seen.has(column.header)) seen.set(column.header, { ...column, explain: firstClause(column.explain) });
  return ['## What the columns mean', '', 'A column left out of a table read 0 in every row of it (no errors, every connection served).', '', renderColumnNotes([...seen.values()]), ''];
}
