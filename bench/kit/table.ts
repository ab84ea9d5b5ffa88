/**
 * Tables of measured figures, and which of them may be called best.
 *
 * A table is columns (what, unit, which way is better) and rows (one per model: a lab or one of
 * its variants), each cell a Summary of the runs (median and range) or a text saying why there is
 * no figure. `rank` decides what a table may claim, as data; `renderTable` bolds exactly that.
 *
 * The rule for "best", one for every report:
 *   - a figure from a run that left connections unanswered (starved) is never best: the total
 *     came from the connections it did answer, not a share for each;
 *   - a throughput the load generator capped (saturated) is its ceiling, not the server's, so it
 *     is not ranked either;
 *   - a figure whose runs spread wider than the figure itself (±50% and more) is not known well
 *     enough to rank;
 *   - of the rest, the best median leads, and any figure no different from it (its range overlaps
 *     the leader's, or the medians are closer than the wider range: stats.ts `differs`) ties with
 *     it, but only when its own range is not wider than the smaller of the two figures: a wide
 *     spread that reaches the best says only that its runs varied;
 *   - the best are one contiguous run of the ranked order: the leader, the last figure that ties
 *     with it and every figure ranked between them, so no bold figure sits below one that is not;
 *   - a figure whose spread (± half its range) is wider than its distance from the first figure
 *     outside the group cannot be told from the rest, so it is never bold: the group ends above
 *     it, at the last figure that still ties with the leader (with the figures between). When the
 *     group that is left cannot be told from the next figure (the leader's spread reaches it, or
 *     it ties with the leader), nothing is called best;
 *   - figures measured once have no spread to compare: nothing is ranked.
 */

import { differs, type Summary } from './stats.js';
import { cellText, formatSummary, type Unit } from './format.js';

export interface Column {
  readonly header: string;
  readonly unit: Unit;
  /** Which way is better; none for a descriptive column (never bold). */
  readonly better?: 'higher' | 'lower';
  /** A throughput: a capped load generator's figure is its ceiling, not the server's. */
  readonly throughput?: boolean;
  /** What the column means, printed under the table. */
  readonly explain?: string;
}

export interface Cell {
  readonly summary?: Summary;
  /** Shown in place of (or, with a summary, after) the figure: "n/a", "cannot hold", "⚠". */
  readonly text?: string;
  /** This figure's run left connections unanswered (the row's other figures may be fine). */
  readonly starved?: boolean;
  /** This figure's load generator saturated. */
  readonly saturated?: boolean;
}

export interface Row {
  readonly label: string;
  /** A link for the label (a report's section). */
  readonly link?: string;
  readonly cells: readonly (Cell | undefined)[];
  /** Connections were left unanswered in this row's runs: no figure of it is ranked. */
  readonly starved?: boolean;
  /** The load generator saturated: no throughput of this row is ranked. */
  readonly saturated?: boolean;
}

export interface Table {
  readonly columns: readonly Column[];
  readonly rows: readonly Row[];
  /** The first column's header ("server", "lab"). */
  readonly rowHeader?: string;
}

/** What one column of a table allows a report to say. Row numbers index `table.rows`. */
export interface Ranking {
  readonly column: number;
  /** Bold: the leader and those tied with it; empty when nothing may be ranked. */
  readonly best: readonly number[];
  /** The next figure after the best ones, when there is one to compare with. */
  readonly next?: number;
  readonly starved: readonly number[];
  readonly saturated: readonly number[];
  readonly overSpread: readonly number[];
  /** Every figure was measured once: no spread, so no ranking. */
  readonly singleRuns: boolean;
  /** The runs spread too widely to tell even the leader from the next figure: no ranking. */
  readonly undecided: boolean;
}

/** The range is wider than the figure: its runs disagree by ±50% or more. */
export function overSpread(s: Summary): boolean {
  return s.runs > 1 && s.max - s.min > Math.abs(s.median);
}

/** `a` is no different from `best`, and its spread is not wider than the figures it compares. */
export function tiesWith(a: Summary, best: Summary): boolean {
  return !differs(a, best) && a.max - a.min <= Math.min(Math.abs(a.median), Math.abs(best.median));
}

export function rank(table: Table, column: number): Ranking {
  const spec = table.columns[column]!;
  const measured = table.rows.flatMap((row, i) => (row.cells[column]?.summary ? [{ i, row, s: row.cells[column]!.summary! }] : []));
  const cell = (m: { row: Row }) => m.row.cells[column]!;
  const starved = measured.filter((m) => m.row.starved || cell(m).starved).map((m) => m.i);
  const saturated = spec.throughput ? measured.filter((m) => (m.row.saturated || cell(m).saturated) && !starved.includes(m.i)).map((m) => m.i) : [];
  const excluded = new Set([...starved, ...saturated]);
  const spreadOut = measured.filter((m) => !excluded.has(m.i) && overSpread(m.s)).map((m) => m.i);
  for (const i of spreadOut) excluded.add(i);
  const eligible = measured.filter((m) => !excluded.has(m.i));
  const singleRuns = eligible.length > 0 && eligible.every((m) => m.s.runs < 2);
  const empty = { column, best: [], starved, saturated, overSpread: spreadOut, singleRuns, undecided: false };
  if (!spec.better || eligible.length < 2 || singleRuns) return empty;
  const sign = spec.better === 'higher' ? -1 : 1;
  const ranked = eligible.sort((a, b) => sign * (a.s.median - b.s.median)).map((m) => m.s);
  const end = bestEnd(ranked);
  if (end === undefined) return { ...empty, undecided: true };
  const next = eligible[end + 1];
  return { ...empty, best: eligible.slice(0, end + 1).map((m) => m.i), ...(next ? { next: next.i } : {}) };
}

/**
 * The last index of the best in figures ranked best first (the rule above), or undefined when the
 * leader itself cannot be told from the next figure.
 */
function bestEnd(ranked: readonly Summary[]): number | undefined {
  const leader = ranked[0]!;
  const lastTie = (from: number) => {
    let i = from;
    while (i > 0 && !tiesWith(ranked[i]!, leader)) i--;
    return i;
  };
  const apart = (end: number) => {
    const rest = ranked[end + 1];
    return !rest || ranked.slice(0, end + 1).every((s) => (s.max - s.min) / 2 <= Math.abs(rest.median - s.median));
  };
  let end = lastTie(ranked.length - 1);
  while (!apart(end) && end > 0) end = lastTie(end - 1);
  // The figure after the group must be told from the leader too, or "best" and "next" would part two no different figures.
  const next = ranked[end + 1];
  return apart(end) && !(next && tiesWith(next, leader)) ? end : undefined;
}

/** The table as Markdown: every ranked column's best figures in bold. */
export function renderTable(table: Table): string {
  const bold = table.columns.map((_, c) => new Set(rank(table, c).best));
  const header = `| ${table.rowHeader ?? 'server'} | ${table.columns.map((c) => c.header).join(' | ')} |`;
  const rule = `|---|${table.columns.map(() => '--:').join('|')}|`;
  const lines = table.rows.map((row, r) => {
    const label = row.link ? `[${row.label}](${row.link})` : row.label;
    const cells = table.columns.map((column, c) => {
      const cell = row.cells[c];
      if (!cell) return '–';
      const figure = cell.summary ? formatSummary(cell.summary, column.unit) : '';
      const shown = figure && bold[c]!.has(r) ? `**${figure}**` : figure;
      return cellText([shown, cell.text].filter(Boolean).join(' ') || '–');
    });
    return `| ${cellText(label)} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...lines].join('\n');
}

/** The columns' explanations, for under a table. */
export function renderColumnNotes(columns: readonly Column[]): string {
  return columns.filter((c) => c.explain).map((c) => `- **${c.header}**: ${c.explain}.`).join('\n');
}

/** A Summary of one figure measured once. */
export const once = (value: number): Summary => ({ median: value, min: value, max: value, runs: 1 });
