/**
 * One scenario cell as a Markdown table: one row per server, the median of its runs with their
 * spread, the best value in each column in bold (and any value no different from it), and rows
 * that could not be measured saying why in place of figures.
 */

import type { CellResult, CellSpec, MetricName, ScenarioResult, TargetInfo } from '../results.js';
import { differs, summarize, type Summary } from '../../kit/stats.js';
import type { AnyColumn } from './columns.js';
import { cellText, formatSummary, formatValue } from './format.js';

/** The load generator counts as saturated from this share of one core. */
export const SATURATED_PCT = 90;

export interface Row {
  readonly target: TargetInfo;
  readonly result: CellResult | undefined;
}

/** A row per server the scenario ran (a server it left out is listed once in its section instead). */
export function rowsFor(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[]): Row[] {
  const left = new Set((scenario.leftOut ?? []).map((l) => l.target));
  return targets.filter((t) => !left.has(t.id)).map((target) => ({ target, result: scenario.results.find((r) => r.target === target.id && r.cell === cell.key) }));
}

/** The load generator used SATURATED_PCT or more of its core in some run: the throughput is its ceiling. */
export function clientSaturated(row: Row): boolean {
  return (metricOf(row, 'loadGenCorePct')?.max ?? 0) >= SATURATED_PCT;
}

/** Some connection got nothing while another was served: the total is not a fair share of anything. */
export function starved(row: Row): boolean {
  const fewest = metricOf(row, 'fewest');
  const most = metricOf(row, 'most');
  return fewest !== undefined && most !== undefined && fewest.median === 0 && most.median > 0;
}

/** The median and range of one metric over a row's runs; undefined when not measured. */
export function metricOf(row: Row, metric: MetricName): Summary | undefined {
  if (!row.result || row.result.runs.length === 0) return undefined;
  return summarize(row.result.runs.map((r) => r.metrics[metric]));
}

function total(row: Row, metric: MetricName): number | undefined {
  const values = row.result?.runs.map((r) => r.metrics[metric]).filter((v): v is number => typeof v === 'number') ?? [];
  return values.length ? values.reduce((a, b) => a + b, 0) : undefined;
}

export function statusText(result: CellResult | undefined): string | undefined {
  if (!result) return 'not run';
  switch (result.status) {
    case 'ok':
      return undefined;
    case 'cannot':
      return `cannot hold: ${result.reason ?? ''}`;
    case 'not-applicable':
      return `n/a: ${result.reason ?? ''}`;
    case 'unavailable':
      return `not run: ${result.reason ?? ''}`;
    case 'not-attempted':
      return result.reason ?? 'not attempted';
    case 'failed':
      return `failed: ${result.reason ?? ''}`;
  }
}

/** Best values of a column: the best median, and every median no different from it. */
function bestRows(rows: Row[], column: AnyColumn): Set<Row> {
  if (!column.better || column.over === 'sum') return new Set();
  // A throughput is marked best only where it is the server's: not the client's ceiling, and not
  // one connection's run while the others starved.
  const measured = rows
    .filter((r) => r.result?.status === 'ok')
    .filter((r) => column.unit !== 'rate' || (!clientSaturated(r) && !starved(r)))
    .map((row) => ({ row, summary: metricOf(row, column.metric) }))
    .filter((x): x is { row: Row; summary: Summary } => x.summary !== undefined);
  if (measured.length < 2) return new Set();
  const sign = column.better === 'higher' ? -1 : 1;
  measured.sort((a, b) => sign * (a.summary.median - b.summary.median));
  const best = measured[0]!.summary;
  return new Set(measured.filter((m) => m === measured[0] || !differs(m.summary, best)).map((m) => m.row));
}

export function renderTable(rows: Row[], columns: readonly AnyColumn[]): string {
  const best = new Map(columns.map((c) => [c, bestRows(rows, c)]));
  const header = `| server | ${columns.map((c) => c.header).join(' | ')} |`;
  const rule = `|---|${columns.map(() => '--:').join('|')}|`;
  const lines = rows.map((row) => {
    const status = statusText(row.result);
    // A capacity level measured but not held still shows what was measured.
    if (status && !(row.result?.status === 'cannot' && row.result.runs.length > 0)) {
      return `| ${row.target.label} | ${cellText(status)} |${' |'.repeat(columns.length - 1)}`;
    }
    const cells = columns.map((column) => {
      const text = [column.metric, ...(column.with ?? [])]
        .map((metric) => {
          if (column.over === 'sum') {
            const sum = total(row, metric);
            return sum === undefined ? '–' : formatValue(sum, column.unit);
          }
          const summary = metricOf(row, metric);
          return summary === undefined ? '–' : formatSummary(summary, column.unit);
        })
        .join(' / ');
      const saturated = column.metric === 'loadGenCorePct' && (metricOf(row, 'loadGenCorePct')?.max ?? 0) >= SATURATED_PCT;
      const marked = best.get(column)!.has(row) ? `**${text}**` : text;
      return saturated ? `${marked} ⚠` : marked;
    });
    // The reason goes under the table (see `rowNotes`): here only that the level was not held.
    const prefix = status ? `${row.target.label} (cannot hold)` : row.target.label;
    return `| ${prefix} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...lines].join('\n');
}

/** Reasons of rows that show figures and a status (a capacity level measured but not held). */
export function rowNotes(rows: Row[]): string[] {
  return rows.flatMap((row) =>
    row.result?.status === 'cannot' && row.result.runs.length > 0 ? [`${row.target.label}: ${statusText(row.result)}`] : [],
  );
}

/** The column explanations printed under a section's tables; a column without one shares the previous one's. */
export function renderColumnNotes(columns: readonly AnyColumn[]): string {
  const groups: { headers: string[]; explain: string }[] = [];
  for (const column of columns) {
    const last = groups[groups.length - 1];
    if (!column.explain && last) last.headers.push(column.header);
    else groups.push({ headers: [column.header], explain: column.explain });
  }
  return groups.map((g) => `- ${g.headers.map((h) => `**${h}**`).join(', ')}: ${g.explain}.`).join('\n');
}
