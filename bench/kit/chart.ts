/**
 * Charts, one backend for every report: a vega-lite spec built from the results file, rendered
 * headless to SVG (no browser, no canvas: text widths are estimated) and written beside the
 * report, which links it as an image. `barChart` is the headline chart of a Summary; an
 * experiment with a picture of its own (latency over time) gives its own vega-lite spec.
 */

import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

export interface Chart {
  /** File name beside the report, without the experiment's prefix: "summary" → NAME-summary.svg. */
  readonly name: string;
  /** The image's alt text and caption. */
  readonly title: string;
  readonly spec: TopLevelSpec;
}

export interface Bar {
  readonly label: string;
  /** Undefined: not measured (left out of the chart). */
  readonly value: number | undefined;
  /** Drawn in grey with this note beside it: a figure that is not ranked (starved, capped). */
  readonly note?: string;
}

export const VEGA_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/**
 * Horizontal bars, one per row, in the rows' order; `log` when the figures span more than two
 * orders of magnitude (on one linear axis the small ones would vanish).
 */
export function barChart(name: string, title: string, axis: string, bars: readonly Bar[]): Chart {
  const values = bars.filter((b) => b.value !== undefined && b.value > 0).map((b) => ({ label: b.label, value: b.value!, note: b.note ?? '' }));
  const top = Math.max(...values.map((v) => v.value));
  const bottom = Math.min(...values.map((v) => v.value));
  const log = values.length > 1 && top / bottom > 100;
  return {
    name,
    title,
    spec: {
      $schema: VEGA_SCHEMA,
      title: { text: title, anchor: 'start' },
      data: { values },
      width: 420,
      height: { step: 18 },
      encoding: {
        y: { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelLimit: 240 } },
        x: { field: 'value', type: 'quantitative', title: log ? `${axis} (log scale)` : axis, ...(log ? { scale: { type: 'log' } } : {}) },
      },
      layer: [
        { mark: { type: 'bar' }, encoding: { color: { condition: { test: "datum.note !== ''", value: '#bbbbbb' }, value: '#1f77b4' } } },
        { mark: { type: 'text', align: 'left', dx: 3, fontSize: 10 }, encoding: { text: { field: 'note' } } },
      ],
      config: { font: 'sans-serif', view: { stroke: null } },
    },
  };
}

/** One vega-lite spec as SVG. */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The Markdown that shows a chart written beside the report as `file`. */
export const chartImage = (chart: Chart, file: string): string => `![${chart.title}](${file})`;
