/** Number formatting for the report: fixed, locale-independent, and easy to scan in a table. */

import type { Summary } from '../../kit/stats.js';
import { spread } from '../../kit/stats.js';
import { formatBytes } from '../../../shared/log.js';

export type Unit = 'count' | 'rate' | 'us' | 'ms' | 'cpuUs' | 'bytes' | 'pct' | 'cores';

const thousands = (n: number) => Math.round(n).toLocaleString('en-US');

export function formatValue(value: number, unit: Unit): string {
  switch (unit) {
    case 'count':
    case 'rate':
    case 'us':
    case 'ms':
      return thousands(value);
    case 'cpuUs':
      return value >= 100 ? thousands(value) : value.toFixed(1);
    case 'pct':
      return `${Math.round(value)}%`;
    case 'cores':
      return value.toFixed(2);
    case 'bytes':
      return formatBytes(value);
  }
}

/** "45,210 ±3%": the median and half its range; no ± for a single run or a range under 0.5%. */
export function formatSummary(summary: Summary, unit: Unit): string {
  const text = formatValue(summary.median, unit);
  const s = spread(summary);
  return summary.runs > 1 && Math.round(s * 100) >= 1 ? `${text} ±${Math.round(s * 100)}%` : text;
}

/** A ratio for prose: "2.4×", "0.55×". */
export function formatRatio(ratio: number): string {
  return `${ratio >= 10 ? Math.round(ratio) : ratio >= 1 ? ratio.toFixed(1) : Number(ratio.toPrecision(2))}×`;
}

/** Markdown table cells must not contain pipes or line breaks. */
export function cellText(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
