/**
 * Bar charts as Mermaid `xychart-beta` blocks, which GitHub renders in Markdown. One series per
 * chart: xychart has no legend, so several series side by side could not be told apart.
 */

export interface Bar {
  readonly label: string;
  /** Undefined when there is nothing to show (not measured, not applicable): drawn as 0. */
  readonly value: number | undefined;
}

export function barChart(title: string, axis: string, bars: readonly Bar[]): string {
  const top = Math.max(0, ...bars.map((b) => b.value ?? 0));
  const quote = (s: string) => `"${s.replace(/"/g, "'")}"`;
  // Bars start at 0: a figure below it (memory that shrank by a page) is drawn as 0.
  const value = (v: number | undefined) => (v === undefined || v <= 0 ? 0 : v >= 100 ? Math.round(v) : Number(v.toFixed(2)));
  return [
    '```mermaid',
    'xychart-beta',
    `    title ${quote(title)}`,
    `    x-axis [${bars.map((b) => quote(b.value === undefined ? `${b.label} (n/a)` : b.label)).join(', ')}]`,
    `    y-axis ${quote(axis)} 0 --> ${niceCeiling(top)}`,
    `    bar [${bars.map((b) => value(b.value)).join(', ')}]`,
    '```',
  ].join('\n');
}

/** A round axis maximum a little above the tallest bar: 1, 2 or 5 times a power of ten. */
export function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const target = value * 1.1;
  const power = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= target) return step * power;
  return 10 * power;
}
