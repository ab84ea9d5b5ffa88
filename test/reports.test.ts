/**
 * Every committed report is what its committed JSON renders, opens with its Summary table within
 * the first 40 lines, and shows at least one chart drawn beside it; bench.md stays short enough
 * to read (under 6,000 words). Rendering only: nothing is measured.
 */

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartFile, readReport, renderMarkdown } from '../bench/kit/experiment.js';
import { EXPERIMENTS } from '../bench/experiments.js';
import { repoRoot } from '../harness/launch.js';

const results = (file: string) => path.join(repoRoot, 'results', file);
const committed = EXPERIMENTS.filter((experiment) => existsSync(results(`${experiment.name}.json`)));

describe.each(committed.map((experiment) => [experiment.name, experiment] as const))('results/%s.md', (name, experiment) => {
  it('is what its JSON renders: the Summary within 40 lines, and its charts beside it', () => {
    const report = readReport(experiment, results(`${name}.json`));
    const markdown = renderMarkdown(experiment, report);
    expect(readFileSync(results(`${name}.md`), 'utf8'), `re-render with make ${name} ${name.toUpperCase()}_ARGS=--render-only`).toBe(markdown);
    const lines = markdown.split('\n');
    expect(lines.indexOf('## Summary')).toBeGreaterThan(0);
    expect(lines.indexOf('## Summary')).toBeLessThan(40);
    expect(lines[lines.indexOf('## Summary') + 2]).toMatch(/^\| /);
    const page = experiment.render(report);
    for (const chart of [page.chart, ...(page.charts ?? [])]) {
      expect(markdown).toContain(`](${chartFile(name, chart)})`);
      expect(existsSync(results(chartFile(name, chart))), chartFile(name, chart)).toBe(true);
    }
    if (name === 'bench') expect(markdown.split(/\s+/).filter(Boolean).length).toBeLessThan(6000);
  });
});
