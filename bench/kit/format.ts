/**
 * The one set of number formats every report uses: fixed, locale-independent, easy to scan in a
 * table. A unit says how a figure reads; a Summary (median and range of runs) adds "±N%".
 */

import { formatBytes } from '../../shared/log.js';
import { spread, type Summary } from './stats.js';

/** `per`: a figure per something (calls per round trip): as many digits as carry meaning. */
export type Unit = 'count' | 'rate' | 'per' | 'us' | 'ms' | 'cpuUs' | 'bytes' | 'pct' | 'cores' | 'ratio' | 's';

export const thousands = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Bytes as MiB with one decimal, for columns headed "(MiB)": 268435456 → "256.0". */
export const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

/** Milliseconds or microseconds with as many digits as carry meaning: 0.03, 1.1, 44, 1,250. */
export function ms(n: number): string {
  return n >= 10 ? thousands(n) : n >= 1 ? n.toFixed(1) : n.toFixed(2);
}

export function formatValue(value: number, unit: Unit): string {
  switch (unit) {
    case 'count':
    case 'rate':
      return thousands(value);
    case 'per':
    case 'us':
    case 'ms':
    case 's':
      return ms(value);
    case 'cpuUs':
      return value >= 100 ? thousands(value) : value.toFixed(1);
    case 'pct':
      return `${Math.round(value)}%`;
    case 'cores':
      return value.toFixed(2);
    case 'bytes':
      return formatBytes(value);
    case 'ratio':
      return formatRatio(value);
  }
}

/** "45,210 ±3%": the median and half its range; no ± for a single run or a range under 0.5%. */
export function formatSummary(summary: Summary, unit: Unit): string {
  const text = formatValue(summary.median, unit);
  const s = Math.round(spread(summary) * 100);
  return summary.runs > 1 && s >= 1 ? `${text} ±${s}%` : text;
}

/** A ratio: "2.4×", "0.55×", "13×". */
export function formatRatio(ratio: number): string {
  return `${ratio >= 10 ? thousands(ratio) : ratio >= 1 ? ratio.toFixed(1) : Number(ratio.toPrecision(2))}×`;
}

/** Markdown table cells must not contain pipes or line breaks. */
export function cellText(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A file-name part from a title: "07 completion (batch, multishot)" → "07-completion-batch-multishot". */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}
