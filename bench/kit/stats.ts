/**
 * Summaries of repeated runs. A cell measured R times is shown as its median with its range; two
 * values closer than the runs' spread are "no difference": the runs themselves varied that much.
 */

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly runs: number;
}

/** The median and range of the non-null values, or undefined when there are none. */
export function summarize(values: ReadonlyArray<number | null | undefined>): Summary | undefined {
  const present = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (present.length === 0) return undefined;
  return { median: median(present), min: Math.min(...present), max: Math.max(...present), runs: present.length };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile: the value below which a share `q` of the values lie; NaN for none. */
export function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Half the range as a share of the median, e.g. 0.03 for ±3%; 0 for a single run. */
export function spread(summary: Summary): number {
  return summary.median === 0 ? 0 : (summary.max - summary.min) / 2 / Math.abs(summary.median);
}

/**
 * Whether two summaries differ by more than their runs varied: their ranges do not overlap, and
 * their medians are further apart than the wider of the two ranges (two ranges that only just miss
 * each other, 282,047-286,932 against 277,320-281,494, are a 1.2% gap inside a 1.7% spread: no
 * difference). A single run has no spread to compare against, so nothing measured once is
 * called different from anything (the report says so where it shows single runs).
 */
export function differs(a: Summary, b: Summary): boolean {
  if (a.runs < 2 || b.runs < 2) return false;
  const disjoint = a.max < b.min || b.max < a.min;
  return disjoint && Math.abs(a.median - b.median) > Math.max(a.max - a.min, b.max - b.min);
}
