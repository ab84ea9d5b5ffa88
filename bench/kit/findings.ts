/**
 * What a report may say, as data first: each finding is one of a few kinds, computed from a table
 * (kit/table.ts `rank`) or from two figures, and tested as data. `say` is the thin layer of words
 * over them: one sentence each, never more than the data holds, and never a lab's name of its own
 * (names come from the rows).
 *
 *   leader     one figure is best, and clearly (its runs do not overlap the next one's)
 *   tie        several figures are best, no different within their runs' spread
 *   compare    two figures side by side, as a ratio, or "no different" when their runs overlap
 *   saturated  the load generator capped these rows: their throughput ranks nothing
 *   starved    these rows left connections unanswered: their figures rank nothing
 *   unranked   figures measured once (no spread) or too spread: nothing is called best
 *   check      a property every row should have (memory levelled off): which rows have it, which not
 */

import { differs, type Summary } from './stats.js';
import { formatRatio, formatSummary, type Unit } from './format.js';
import { rank, type Table } from './table.js';

export interface Figure {
  readonly row: string;
  readonly summary: Summary;
}

export type Finding =
  | { readonly kind: 'leader'; readonly what: string; readonly unit: Unit; readonly better: 'higher' | 'lower'; readonly leader: Figure; readonly next?: Figure }
  | { readonly kind: 'tie'; readonly what: string; readonly unit: Unit; readonly figures: readonly Figure[]; readonly next?: Figure }
  | { readonly kind: 'compare'; readonly what: string; readonly unit: Unit; readonly a: Figure; readonly b: Figure }
  | { readonly kind: 'saturated'; readonly what: string; readonly rows: readonly string[] }
  | { readonly kind: 'starved'; readonly what: string; readonly rows: readonly string[] }
  | { readonly kind: 'unranked'; readonly what: string; readonly reason: 'single runs' | 'spread' }
  | { readonly kind: 'check'; readonly what: string; readonly passed: readonly string[]; readonly failed: readonly string[] };

/** Which rows have a property, as a finding. */
export function check<T>(what: string, rows: readonly T[], label: (row: T) => string, holds: (row: T) => boolean): Finding {
  return { kind: 'check', what, passed: rows.filter(holds).map(label), failed: rows.filter((r) => !holds(r)).map(label) };
}

/**
 * The findings one column of a table supports: its leader (or tie), then the rows it could not
 * rank and why. `what` names the figure in words ("server CPU µs per round trip at 100 connections").
 */
export function columnFindings(table: Table, column: number, what: string): Finding[] {
  const ranking = rank(table, column);
  const spec = table.columns[column]!;
  const figure = (i: number): Figure => ({ row: table.rows[i]!.label, summary: table.rows[i]!.cells[column]!.summary! });
  const out: Finding[] = [];
  const next = ranking.next === undefined ? undefined : figure(ranking.next);
  if (ranking.best.length === 1) out.push({ kind: 'leader', what, unit: spec.unit, better: spec.better!, leader: figure(ranking.best[0]!), ...(next ? { next } : {}) });
  else if (ranking.best.length > 1) out.push({ kind: 'tie', what, unit: spec.unit, figures: ranking.best.map(figure), ...(next ? { next } : {}) });
  else if (spec.better && ranking.singleRuns) out.push({ kind: 'unranked', what, reason: 'single runs' });
  else if (ranking.undecided) out.push({ kind: 'unranked', what, reason: 'spread' });
  if (ranking.saturated.length) out.push({ kind: 'saturated', what, rows: ranking.saturated.map((i) => table.rows[i]!.label) });
  if (ranking.starved.length) out.push({ kind: 'starved', what, rows: ranking.starved.map((i) => table.rows[i]!.label) });
  return out;
}

/** Two figures compared; undefined when either is missing. */
export function compare(what: string, unit: Unit, a: Figure | undefined, b: Figure | undefined): Finding | undefined {
  return a && b && a.row !== b.row ? { kind: 'compare', what, unit, a, b } : undefined;
}

const list = (items: readonly string[]): string => (items.length < 3 ? items.join(' and ') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`);
const shown = (f: Figure, unit: Unit) => `${f.row} (${formatSummary(f.summary, unit)})`;

/** The words for one finding: one sentence. */
export function say(finding: Finding): string {
  switch (finding.kind) {
    case 'leader': {
      const { leader, next, unit } = finding;
      if (finding.better === 'lower') {
        return `${capital(finding.what)}: least ${shown(leader, unit)}${next ? `; next ${shown(next, unit)}, ${formatRatio(next.summary.median / leader.summary.median)} as much` : ''}.`;
      }
      return `${capital(finding.what)}: most ${shown(leader, unit)}${next ? `, ${formatRatio(leader.summary.median / next.summary.median)} the next, ${shown(next, unit)}` : ''}.`;
    }
    case 'tie':
      return `${capital(finding.what)}: ${list(finding.figures.map((f) => shown(f, finding.unit)))} are best, no different within their runs' spread${finding.next ? `; next ${shown(finding.next, finding.unit)}` : ''}.`;
    case 'compare': {
      const { a, b } = finding;
      if (!differs(a.summary, b.summary) && (a.summary.runs > 1 || b.summary.runs > 1)) {
        return `${capital(finding.what)}: ${shown(a, finding.unit)} and ${shown(b, finding.unit)}, no different within their runs' spread.`;
      }
      const ratio = a.summary.median / b.summary.median;
      const times = !Number.isFinite(ratio) ? 'far more' : ratio >= 1 ? `${formatRatio(ratio)} as much` : `${formatRatio(1 / ratio)} less`;
      return `${capital(finding.what)}: ${shown(a, finding.unit)} against ${shown(b, finding.unit)}, ${times}.`;
    }
    case 'saturated':
      return `${capital(finding.what)} of ${list(finding.rows)}: the load generator's ceiling (it was near a full core), not ranked.`;
    case 'starved':
      return `${capital(finding.what)} of ${list(finding.rows)}: not ranked, those runs left connections unanswered.`;
    case 'unranked':
      return `${capital(finding.what)}: ${finding.reason === 'single runs' ? 'each figure was measured once, so none is called best' : 'the runs spread too widely to call any best'}.`;
    case 'check': {
      const n = finding.passed.length + finding.failed.length;
      if (finding.failed.length === 0) return `${capital(finding.what)}: all ${n}.`;
      if (finding.passed.length === 0) return `${capital(finding.what)}: none of the ${n}.`;
      return `${capital(finding.what)}: ${finding.passed.length} of ${n}; not ${list(finding.failed)}.`;
    }
  }
}

export const capital = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);
