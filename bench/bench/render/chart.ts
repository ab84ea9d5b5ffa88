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

/**
 * The tallest bar of a chart is at most this many times its shortest: xychart has no log axis,
 * and on one linear axis 8.7 MiB beside 9 KiB leaves the small bar invisible. Below 1/20 of the
 * axis a bar is a line a reader cannot measure.
 */
export const CHART_SPAN = 20;

/**
 * One chart when every bar is visible on one linear axis; otherwise one chart per band of
 * magnitude (tallest first, each band within CHART_SPAN of its tallest bar), so no bar vanishes.
 * Bars without a value (n/a, or nothing to draw) go with the last band, drawn as 0 and labelled.
 */
export function barCharts(title: string, axis: string, bars: readonly Bar[]): string[] {
  const drawn = bars.filter((b) => b.value !== undefined && b.value > 0);
  const values = drawn.map((b) => b.value!);
  if (values.length < 2 || Math.max(...values) <= CHART_SPAN * Math.min(...values)) return [barChart(title, axis, bars)];
  const bands: Bar[][] = [];
  for (const bar of [...drawn].sort((a, b) => b.value! - a.value!)) {
    const band = bands.at(-1);
    if (band && bar.value! * CHART_SPAN >= band[0]!.value!) band.push(bar);
    else bands.push([bar]);
  }
  const rest = bars.filter((b) => !drawn.includes(b));
  return bands.map((band, i) => {
    const members = bars.filter((b) => band.includes(b) || (i === bands.length - 1 && rest.includes(b)));
    return barChart(`${title} (${i + 1} of ${bands.length}: one scale per order of magnitude)`, axis, members);
  });
}

/** A round axis maximum a little above the tallest bar: 1, 2 or 5 times a power of ten. */
export function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const target = value * 1.1;
  const power = 10 ** Math.floor(Math.log10(target));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= target) return step * power;
  return 10 * power;
}
