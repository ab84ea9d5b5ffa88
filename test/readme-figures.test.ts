/**
 * Every number a README quotes from a committed report is generated into it (bench/readme-figures.ts):
 * here each committed results/NAME.json has its figures computed again, and every marked figure in
 * every README must say exactly that. A README edited by hand, or left behind when a report was
 * measured again without its render step, fails here with the file, the figure and both texts.
 * Cases exist only for the results files that are committed; a marker that names a figure no
 * committed report produces fails too.
 */

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backlog } from '../bench/backlog/main.js';
import { readReport } from '../bench/kit/experiment.js';
import { figures as backlogFigures } from '../bench/backlog/figures.js';
import { figures as benchFigures } from '../bench/servers/figures.js';
import { migrateBench, SCHEMA_VERSION, type BenchResults } from '../bench/servers/results.js';
import { applyFigures, figureIn, headingAnchor, markedFigures, markerProblem, readmeFiles, type Figures } from '../bench/readme-figures.js';
import { repoRoot } from '../harness/launch.js';
import { readReportFile } from '../bench/kit/report-file.js';

/** Each experiment that READMEs quote, and how its figures come from its results file. */
const EXPERIMENTS: Readonly<Record<string, (file: string) => Figures>> = {
  backlog: (file) => backlogFigures(readReport(backlog, file)),
  bench: (file) =>
    benchFigures(readReportFile<BenchResults>(file, { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench', migrate: migrateBench })),
};

const resultsFile = (experiment: string) => path.join(repoRoot, 'results', `${experiment}.json`);
const committed = Object.keys(EXPERIMENTS).filter((experiment) => existsSync(resultsFile(experiment)));
const computed = new Map(committed.map((experiment) => [experiment, EXPERIMENTS[experiment]!(resultsFile(experiment))]));

const readmes = readmeFiles().map((file) => ({ file: path.relative(repoRoot, file), text: readFileSync(file, 'utf8') }));
const experimentOf = (name: string) => name.split('/')[0]!;

describe('README figures', () => {
  it('finds marked figures in the READMEs', () => {
    expect(readmes.flatMap((r) => markedFigures(r.text)).length).toBeGreaterThan(0);
  });

  describe.each(committed)('from results/%s.json', (experiment) => {
    const figures = computed.get(experiment)!;

    it('says in every README exactly what the committed report says', () => {
      const stale: string[] = [];
      for (const { file, text } of readmes) {
        for (const marked of markedFigures(text)) {
          if (experimentOf(marked.name) !== experiment || !(marked.name in figures)) continue;
          const expected = figureIn(figures[marked.name]!, file);
          if (marked.text !== expected) stale.push(`${file}: figure ${marked.name} says\n    ${marked.text}\n  the report gives\n    ${expected}`);
        }
      }
      expect(stale, `stale README figures; re-render with the experiment's --render-only (make report for bench):\n${stale.join('\n')}`).toEqual([]);
    });

    it('links only to sections the committed report has', () => {
      const report = readFileSync(path.join(repoRoot, 'results', `${experiment}.md`), 'utf8');
      const anchors = new Set([...report.matchAll(/^#+ (.+)$/gm)].map((m) => headingAnchor(m[1]!)));
      const missing = Object.entries(figures).flatMap(([name, text]) =>
        [...text.matchAll(new RegExp(`\\]\\(results/${experiment}\\.md#([^)]+)\\)`, 'g'))].filter((m) => !anchors.has(m[1]!)).map((m) => `${name} → #${m[1]}`),
      );
      expect(missing).toEqual([]);
    });
  });

  it('marks only figures that a committed report produces', () => {
    const orphans = readmes.flatMap(({ file, text }) =>
      markedFigures(text)
        .filter((m) => !(m.name in (computed.get(experimentOf(m.name)) ?? {})))
        .map((m) => `${file}: ${m.name}${computed.has(experimentOf(m.name)) ? '' : ` (no committed results/${experimentOf(m.name)}.json with figures)`}`),
    );
    expect(orphans).toEqual([]);
  });

  it('keeps every marker paired, and none inside a sentence at the start of a line', () => {
    const problems = readmes.flatMap(({ file, text }) => {
      const paired = markerProblem(text);
      // A line starting with "<!--" opens an HTML block and would cut the paragraph in two.
      const split = text.split('\n').flatMap((line, i) => (/^<!-- (figure [\w./@-]+|\/figure) -->./.test(line) ? [`${file}:${i + 1} starts with a figure marker`] : []));
      return [...(paired ? [`${file}: ${paired}`] : []), ...split];
    });
    expect(problems).toEqual([]);
  });
});

describe('applyFigures', () => {
  const figures = { 'x/phrase': '69 ms–99 ms', 'x/link': '[results/x.md, "A"](results/x.md#a)', 'x/table': '| a |\n|---|\n| 1 |' };

  it('rewrites inline and block figures, keeps their layout, and leaves unknown ones alone', () => {
    const text = [
      'came <!-- figure x/phrase -->old<!-- /figure --> after, (from <!-- figure x/link -->old<!-- /figure -->)',
      '<!-- figure x/table -->',
      '| old |',
      '<!-- /figure -->',
      'and <!-- figure y/other -->kept<!-- /figure -->',
    ].join('\n');
    expect(applyFigures(text, figures, 'labs/01-serial/README.md')).toBe(
      [
        'came <!-- figure x/phrase -->69 ms–99 ms<!-- /figure --> after, (from <!-- figure x/link -->[results/x.md, "A"](../../results/x.md#a)<!-- /figure -->)',
        '<!-- figure x/table -->',
        '| a |',
        '|---|',
        '| 1 |',
        '<!-- /figure -->',
        'and <!-- figure y/other -->kept<!-- /figure -->',
      ].join('\n'),
    );
    expect(markedFigures(applyFigures(text, figures, 'README.md')).map((m) => m.text)).toEqual([
      '69 ms–99 ms',
      '[results/x.md, "A"](results/x.md#a)',
      '| a |\n|---|\n| 1 |',
      'kept',
    ]);
  });

  it('notices a marker without its partner', () => {
    expect(markerProblem('a <!-- figure x/phrase -->69 ms and no end')).toBeDefined();
    expect(markerProblem('a <!-- figure x/phrase -->69 ms<!-- /figure -->')).toBeUndefined();
  });

  it('makes anchors as GitHub does', () => {
    expect(headingAnchor('03-worker-pool: worker pool, one I/O thread + piscina workers (backlog 511)')).toBe('03-worker-pool-worker-pool-one-io-thread--piscina-workers-backlog-511');
    expect(headingAnchor('1. Raw echo, closed loop')).toBe('1-raw-echo-closed-loop');
  });
});
