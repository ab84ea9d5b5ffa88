/**
 * The report renderer, from a fixed results file (test/fixtures/bench-results.json, made by hand
 * so every case appears: repeats that overlap and that differ, a saturated load generator, a lab
 * not built, a scenario that does not apply, a capacity level not held and one not attempted).
 * The figures in the fixture are invented; nothing here measures anything.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bench } from '../bench/servers/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';
import { migrateBench, SCHEMA_VERSION, type BenchResults } from '../bench/servers/results.js';
import { readReportFile } from '../bench/kit/report-file.js';
import { UserError } from '../shared/errors.js';

const fixtures = path.join(import.meta.dirname, 'fixtures');
const fixture = readReportFile<BenchResults>(path.join(fixtures, 'bench-results.json'), { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench' });
/** Linked as the command line links it when rendering the fixture next to its golden file. */
const renderReport = (results: BenchResults) => renderMarkdown(bench, results, 'bench-results.json');
const report = renderReport(fixture);

/** The text of one `## N. Heading` section. */
function section(heading: string): string {
  const start = report.indexOf(`. ${heading}\n`);
  expect(start, `section ${heading}`).toBeGreaterThan(0);
  const next = report.indexOf('\n## ', start + 1);
  return report.slice(start, next === -1 ? undefined : next);
}

/** The table row of `label` in the table under `### cellTitle` inside `text`. */
function row(text: string, cellTitle: string, label: string): string[] {
  const table = text.slice(text.indexOf(`### ${cellTitle}\n`));
  const line = table.split('\n').find((l) => l.startsWith(`| ${label} `));
  expect(line, `${label} row under ${cellTitle}`).toBeDefined();
  return line!.split(' | ').map((c) => c.replace(/^\| |\s\|$/g, '').trim());
}

describe('bench report renderer', () => {
  it('renders the fixture exactly as the committed golden file', () => {
    // A change to the report shows here as a diff to review. If it is intended, regenerate with
    //   node --import tsx bench/servers/main.ts --render-only --output test/fixtures/bench-results.json \
    //     --markdown test/fixtures/bench-report.golden.md
    expect(report).toBe(readFileSync(path.join(fixtures, 'bench-report.golden.md'), 'utf8'));
  });

  it('lifts a schema-4 file (no idle levels\' figures, no machine limits) and renders it without the million paragraph', () => {
    const idle = fixture.scenarios.find((s) => s.id === 'idle')!;
    const newMetrics = new Set(['openS', 'sources', 'serverRssBytes', 'rssPerConnection', 'kernelSlabBytes', 'kernelBufferBytes', 'kernelPerConnection', 'socketsPerConnection', 'conntrackPerConnection']);
    const old = {
      ...fixture,
      schema: 4,
      scenarios: fixture.scenarios.map((s) =>
        s !== idle
          ? s
          : { ...s, facts: { fdLimitBefore: 20000, fdLimit: 20000 }, results: s.results.map((r) => ({ ...r, runs: r.runs.map((run) => ({ ...run, metrics: Object.fromEntries(Object.entries(run.metrics).filter(([k]) => !newMetrics.has(k))) })) })) },
      ),
    };
    const lifted = migrateBench(JSON.parse(JSON.stringify(old)) as Record<string, unknown>)!;
    expect(lifted.schema).toBe(SCHEMA_VERSION);
    const text = renderReport(lifted);
    expect(text).not.toContain('A million connections');
    expect(text).toContain('| 04 evented | 6.1 ±2% |');
    expect(report).toContain('### A million connections, on paper');
  });

  it('refuses a results file of another schema with one line', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-schema-'));
    try {
      const file = path.join(dir, 'bench.json');
      writeFileSync(file, JSON.stringify({ ...fixture, schema: 99 }));
      expect(() => readReportFile<BenchResults>(file, { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench' })).toThrow(
        new RegExp(`has schema 99; this renderer reads schema ${SCHEMA_VERSION}: measure again with make bench$`),
      );
      writeFileSync(file, JSON.stringify({ ...fixture, experiment: 'soak' }));
      expect(() => readReportFile<BenchResults>(file, { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench' })).toThrow(UserError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lifts a schema-3 file (no warm-up figures) to the same tables', () => {
    const v3 = {
      ...fixture,
      schema: 3,
      scenarios: fixture.scenarios.map((scenario) => ({
        ...scenario,
        results: scenario.results.map((result) => ({
          ...result,
          runs: result.runs.map(({ metrics: { warmupS: _w, startCpuUsPerConnection: _s, ...metrics }, notes }) => ({ metrics, notes })),
        })),
      })),
    };
    const lifted = migrateBench(JSON.parse(JSON.stringify(v3)) as Record<string, unknown>)!;
    expect(lifted.schema).toBe(SCHEMA_VERSION);
    expect(renderReport(lifted)).toBe(report);
  });

  it('refuses a schema-1 or schema-2 file rather than guess', () => {
    for (const schema of [1, 2]) expect(migrateBench(JSON.parse(JSON.stringify({ ...fixture, schema })) as Record<string, unknown>)).toBeUndefined();
  });

  it('opens with the Summary, its chart and findings, then the stamp and how the run was made', () => {
    const lines = report.split('\n');
    expect(lines.indexOf('## Summary')).toBeLessThan(40);
    expect(lines.indexOf('## Summary')).toBeLessThan(lines.indexOf('## How this run was made'));
    expect(report).toContain('![CPU µs/round trip, 100 conn × 64 B](bench-summary.svg)');
    for (const line of ['| Machine | Example CPU @ 2.0GHz, 2 cores, 23.5 GiB |', '| Node | v20.20.2 |', '`0123456789ab`', '| Command | `make bench` |']) expect(report).toContain(line);
    expect(report).toContain('[`bench-results.json`](bench-results.json)');
  });

  it('has one section per scenario, each with its findings, its chart, its headline cell\'s table and its other cells in one', () => {
    for (const [i, scenario] of fixture.scenarios.entries()) {
      const text = section(sectionHeading(report, i + 1));
      for (const cell of scenario.cells) expect(text.includes(`### ${cell.title}\n`) || text.includes(`| ${cell.title} |`), cell.title).toBe(true);
    }
    expect(row(section('Raw echo, closed loop'), 'The other cells', '01 serial')).toHaveLength(1 + fixture.scenarios.find((s) => s.id === 'echo')!.cells.length - 1);
    expect(section('Raw echo, closed loop')).toContain('(bench-echo.svg)');
  });

  it('never marks a starved run or a capped throughput best, and marks the honest best', () => {
    const echo = section('Raw echo, closed loop');
    // plain Node 80,000-80,600 and 05 (poll) 75,000-75,600 differ; 04 evented and C epoll saturated
    // their load generator, 01 serial starved 99 connections: none of those is marked best.
    expect(row(echo, '100 conn × 64 B', 'plain Node')[1]).toBe('**80,300**');
    expect(row(echo, '100 conn × 64 B', '04 evented')[1]).toBe('51,000 ±2%');
    expect(row(echo, '100 conn × 64 B', 'C epoll')[1]).toBe('50,500 ±4%');
    expect(row(echo, '100 conn × 64 B', '01 serial').join(' ')).not.toContain('**');
    expect(echo).toContain("- Round trips/s at 100 conn × 64 B of 04 evented and C epoll: the load generator's ceiling (it was near a full core), not ranked.");
    const summaryRows = report.slice(report.indexOf('## Summary'), report.indexOf('![')).split('\n');
    expect(summaryRows.find((line) => line.startsWith('| 01 serial '))).not.toContain('**');
  });

  it('gives every server a row, saying why when it was not measured', () => {
    const http = section('HTTP echo through autocannon');
    expect(row(http, '100 conn, no pipelining', '03 worker pool')[1]).toMatch(/^not run: not built/);
    expect(row(http, '100 conn, no pipelining', 'C epoll')[1]).toBe('n/a: speaks echo only; this scenario needs http');
    const capacity = section('Capacity: idle connections held');
    expect(row(capacity, 'The other cells', '01 serial')[1]).toBe('1 (cannot hold)');
    expect(row(capacity, '1,000 connections', '02 process/conn')[1]).toMatch(/^not attempted: 30.0 MiB per connection/);
  });
});

/** The heading of section `n` ("1. Raw echo, closed loop" → "Raw echo, closed loop"). */
function sectionHeading(text: string, n: number): string {
  return new RegExp(`^## ${n}\\. (.+)$`, 'm').exec(text)![1]!;
}
