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
import { renderReport } from '../bench/bench/render/report.js';
import { migrateBench, SCHEMA_VERSION, type BenchResults } from '../bench/bench/results.js';
import { readReportFile } from '../bench/kit/report-file.js';
import { UserError } from '../shared/errors.js';
import { sectionSpec } from '../bench/bench/render/columns.js';
import { LABS } from '../labs/index.js';
import { differs, summarize } from '../bench/kit/stats.js';

const fixtures = path.join(import.meta.dirname, 'fixtures');
const fixture = readReportFile<BenchResults>(path.join(fixtures, 'bench-results.json'), { experiment: 'bench', schema: SCHEMA_VERSION, measure: 'make bench' });
/** Linked as the command line links it when rendering the fixture next to its golden file. */
const report = renderReport(fixture, 'bench-results.json');

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
    //   node --import tsx bench/bench/main.ts --render-only --output test/fixtures/bench-results.json \
    //     --markdown test/fixtures/bench-report.golden.md
    expect(report).toBe(readFileSync(path.join(fixtures, 'bench-report.golden.md'), 'utf8'));
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

  it('lifts a schema-3 file (no warm-up figures): the same report without the start-up line', () => {
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
    const rendered = renderReport(lifted, 'bench-results.json');
    expect(rendered).not.toContain('to start up');
    expect(rendered).toBe(report.replace(/\n- 02 process\/conn at 100 conn × 64 B: 26\.0 server CPU µs per round trip in the steady state[^\n]*/, ''));
  });

  it('says the steady cost per round trip of a server that starts a process per connection next to its start-up cost per connection', () => {
    expect(section('Raw echo, closed loop')).toContain(
      '02 process/conn at 100 conn × 64 B: 26.0 server CPU µs per round trip in the steady state (the table\'s figure, measured after the warm-up, ' +
        'which in 1 of 3 runs hit its bound with some connections still unanswered), and 42,200 µs of server CPU per connection to start up',
    );
  });

  it('says every connection was answered before the window only when no warm-up hit its bound', () => {
    const answered: BenchResults = JSON.parse(JSON.stringify(fixture));
    for (const scenario of answered.scenarios) {
      for (const result of scenario.results) {
        for (const run of result.runs) (run as unknown as { notes: string[] }).notes = run.notes.filter((n) => !n.startsWith('the warm-up hit its'));
      }
    }
    const rendered = renderReport(answered, 'bench-results.json');
    expect(rendered).toContain("(the table's figure, measured once every connection had been answered), and 42,200 µs");
    expect(rendered).not.toContain('hit its bound with some connections still unanswered');
    expect(report).not.toContain('measured once every connection had been answered');
  });

  it('lifts a schema-2 file, taking the multi-core flags from the registry', () => {
    const v2 = { ...fixture, schema: 2, targets: fixture.targets.map(({ multiCore: _multiCore, ...t }) => t) };
    const lifted = migrateBench(JSON.parse(JSON.stringify(v2)) as Record<string, unknown>)!;
    expect(lifted.schema).toBe(SCHEMA_VERSION);
    expect(lifted.targets.find((t) => t.id === '03-worker-pool')!.multiCore).toBe(true);
    expect(renderReport(lifted, 'bench-results.json')).toBe(report);
  });

  it('lifts a schema-1 file, taking the labs from the registry', () => {
    const v1 = { ...fixture, schema: 1, experiment: undefined, labs: undefined, targets: fixture.targets.map(({ traits: _traits, multiCore: _multiCore, ...t }) => (t.kind === 'lab' && LABS.some((lab) => lab.id === t.id) ? { ...t, model: 'an old description' } : t)) };
    const lifted = migrateBench(JSON.parse(JSON.stringify(v1)) as Record<string, unknown>)!;
    expect(lifted.schema).toBe(SCHEMA_VERSION);
    expect(lifted.labs.map((lab) => lab.id)).toEqual(fixture.labs.map((lab) => lab.id));
    expect(lifted.targets.find((t) => t.kind === 'lab')!.model).not.toBe('an old description');
    // The registry's descriptions replace the file's: the report is the fixture's with those.
    const registry = new Map(LABS.map((lab) => [lab.id, lab.model]));
    const withRegistry = { ...fixture, targets: fixture.targets.map((t) => (registry.has(t.id) ? { ...t, model: registry.get(t.id)! } : t)) };
    expect(renderReport(lifted, 'bench-results.json')).toBe(renderReport(withRegistry, 'bench-results.json'));
  });

  it('starts with the machine stamp and says how the run was made', () => {
    for (const line of ['| Machine | Example CPU @ 2.0GHz, 2 cores, 23.5 GiB |', 'net.core.somaxconn = 4096', '| Node | v20.20.2 |', '`0123456789ab`', '| Command | `make bench` |']) {
      expect(report).toContain(line);
    }
    expect(report).toContain('ran on core 0 and each server\'s whole process tree on core 1, pinned with `taskset`');
    expect(report).toContain('then measured 3 windows of 2 s back to back');
    expect(report).toContain('[`bench-results.json`](bench-results.json)');
    expect(report).toContain("The machine's 1-minute load average was 0.1 as the run started");
  });

  it('has one section per scenario, each with generated findings, a Mermaid chart and its columns explained', () => {
    for (const scenario of fixture.scenarios) {
      const spec = sectionSpec(scenario.id);
      const text = section(spec.heading);
      expect(text).toContain('### What this shows');
      expect(text).toContain('```mermaid\nxychart-beta');
      for (const column of spec.columns) expect(text).toContain(`**${column.header}**`);
      for (const cell of scenario.cells) expect(text).toContain(`### ${cell.title}\n`);
    }
  });

  /** The fixture with `target`'s runs in `scenario`'s `cell` set to `values` of `metric`. */
  function withRuns(scenario: string, cell: string, target: string, metric: string, values: number[], base: BenchResults = fixture): BenchResults {
    return {
      ...base,
      scenarios: base.scenarios.map((s) =>
        s.id !== scenario
          ? s
          : {
              ...s,
              results: s.results.map((r) =>
                r.cell !== cell || r.target !== target ? r : { ...r, runs: r.runs.map((run, i) => ({ ...run, metrics: { ...run.metrics, [metric]: values[i]! } })) },
              ),
            },
      ),
    };
  }

  it('ranks no near-tie: a server whose runs overlap the leader\'s, even one whose load generator saturated, makes it "no different", not "the most"', () => {
    // plain Node 80,000-80,600 against 04 evented (its client at 95-97%) at 79,900-80,500: the
    // 90% cut-off must not decide which one "completed the most".
    const tied = renderReport(withRuns('echo', 'c100-b64', '04-evented', 'roundTripsPerSec', [79_900, 80_500, 80_200]), 'bench-results.json');
    expect(tied).toContain(
      "At 100 conn × 64 B no server completed clearly the most round trips: plain Node's 80,300/s is no different from 04 evented's 80,200/s (its load generator's ceiling), within the runs' spread.",
    );
    expect(tied).not.toContain('plain Node completed the most round trips');
    // Apart by more than the runs varied: ranked as before.
    expect(report).toContain('plain Node completed the most round trips: 80,300/s, 1.1× 05 event loop (poll)\'s 75,300/s.');
    const churn = renderReport(withRuns('churn', 'k10', '04-evented', 'connectionsPerSec', [15_100, 15_400, 15_800]), 'bench-results.json');
    expect(churn).toContain("No server turned over clearly the most connections (the top rates are within the runs' spread): C epoll 15,500/s.");
    expect(report).toContain('C epoll turned over the most connections: 15,500/s.');
  });

  it('calls the review\'s near-tie no different: 282,844/s against 279,365/s, ranges that just miss each other inside a wider spread', () => {
    // The committed run's figures (results/bench.json at a4be1c4, 100 conn × 64 B): 05 poll's runs and 05 epoll-level's (client at 91%).
    const poll = [282_047.2, 286_932.2, 282_844.3];
    const level = [277_319.5, 279_364.6, 281_493.9];
    const near = withRuns('echo', 'c100-b64', 'plain-node', 'roundTripsPerSec', poll);
    const tied = renderReport(withRuns('echo', 'c100-b64', '04-evented', 'roundTripsPerSec', level, near), 'bench-results.json');
    expect(tied).toContain(
      "At 100 conn × 64 B no server completed clearly the most round trips: plain Node's 282,844/s is no different from 04 evented's 279,365/s (its load generator's ceiling), within the runs' spread.",
    );
    expect(differs(summarize(poll)!, summarize(level)!), 'a 1.2% gap in a 1.7% spread').toBe(false);
    expect(differs(summarize([100, 101, 102])!, summarize([110, 111, 112])!), 'a 10% gap in a 2% spread').toBe(true);
  });

  it('lists the CPU per round trip in order, joining overlapping runs as no different', () => {
    expect(section('Raw echo, closed loop')).toContain(
      "cheapest first (the fair figure whoever set the pace): C epoll 4.2; plain Node 6.0, 05 event loop (poll) 6.2 (no different, within the runs' spread); 04 evented 9.2;",
    );
  });

  it('marks the best value, and calls overlapping ranges no difference', () => {
    const echo = section('Raw echo, closed loop');
    // plain Node 80,000-80,600 and 05 (poll) 75,000-75,600 differ; 04 evented and C epoll saturated
    // their load generator, 01 serial starved 99 connections: none of those is marked best.
    expect(row(echo, '100 conn × 64 B', 'plain Node')[1]).toBe('**80,300**');
    expect(row(echo, '100 conn × 64 B', '04 evented')[1]).toBe('51,000 ±2%');
    expect(row(echo, '100 conn × 64 B', 'C epoll')[1]).toBe('50,500 ±4%');
    expect(echo).toContain("plain Node completed the most round trips: 80,300/s, 1.1× 05 event loop (poll)'s 75,300/s");
    // Lower is better for CPU per round trip: the reference's 4.2 is best.
    expect(row(echo, '100 conn × 64 B', 'C epoll')[10]).toBe('**4.2 ±5%**');
  });

  it('never ranks a throughput its load generator capped, and leads with the CPU per round trip there', () => {
    const echo = section('Raw echo, closed loop');
    // 04 evented's 51,000/s is above 02's 31,000/s, but its client used 96% of its core.
    expect(echo).not.toMatch(/04 evented completed the most|no different from 04 evented|no different from C epoll/);
    expect(echo).toContain('the load generator saturated against 04 evented, C epoll, so their throughput ranks nothing; by the server\'s CPU: 04 evented 9.2 server CPU µs per round trip');
    expect(echo).toContain("(its 51,000/s is the client's ceiling: load generator 96% of its core, server 0.90 cores)");
    expect(echo).toContain('Against the C reference the load generator saturated: it used 97% of its core while the server kept 0.90 cores busy');
    const http = section('HTTP echo through autocannon');
    // At pipelining 10, 04 evented (41,000 req/s, client 93%) and 01 serial (20,500) both beat 02's 12,500.
    expect(http).toContain('At 100 conn, pipelining 10, among the servers whose load generator kept up and that served every connection, 02 process/conn answered the most requests');
    expect(http).not.toMatch(/pipelining 10, (among [^,]*, )?(04 evented|01 serial) answered the most/);
  });

  it('never calls a server whose least-served connection got nothing the most, and leads with the fairness', () => {
    const http = section('HTTP echo through autocannon');
    expect(http).toContain('01 serial at 100 conn, pipelining 10: its least-served connection got 0 requests');
    expect(http).toContain('so it is not ranked');
    expect(row(http, '100 conn, pipelining 10', '01 serial')[1]).not.toMatch(/\*\*/);
  });

  it('splits the cost at the references: C to plain Node, plain Node to each lab', () => {
    const echo = section('Raw echo, closed loop');
    expect(echo).toContain('What Node costs: plain Node spent 6.0 µs per round trip, the C reference 4.2');
    expect(echo).toContain("05 event loop (poll) +0.2 µs (+3%, within 5%, within the runs' spread)");
    expect(echo).toContain('04 evented +3.2 µs (+53%, more than 5% apart: 1.5×)');
  });

  it('reports the idle-descriptor slope of each loop, and the descriptor limit', () => {
    const idle = section('Idle connections beside busy ones (C10K)');
    expect(idle).toContain('05 event loop (poll): server CPU per busy round trip 4.2 µs at 0 idle, 30.0 µs at 1,000 idle; slope 25.80 µs per round trip per 1,000 idle descriptors');
    expect(idle).toContain("04 evented: server CPU per busy round trip 6.0 µs at 0 idle, 6.1 µs at 1,000 idle; slope 0.10 µs per round trip per 1,000 idle descriptors: no change from 0 to 1,000 idle, within the runs' spread");
    expect(idle).toContain('raised from 1,024 with `prlimit` before the first server started');
    expect(idle).toContain('Not run in this scenario: 01 serial, 02 process/conn, 03 worker pool, plain Node');
  });

  it('says once, near the top, that servers were pinned to one core, and what that hides', () => {
    const top = report.slice(0, report.indexOf('\n## 1. '));
    expect(top).toContain('**Every server was pinned to one core (core 1) outside the CPU-bound scenario.**');
    expect(top).toContain('(here 03 worker pool)');
  });

  it('draws every bar visibly: one chart per order of magnitude when the values span more than 20×', () => {
    const churn = section('Connection churn');
    // 42 connections/s beside 15,500/s: 02 gets a chart of its own.
    expect(churn).toContain('(1 of 2: one scale per order of magnitude)');
    expect(churn).toContain('x-axis ["02 process/conn"]');
  });

  it('warns where the load generator saturated its core', () => {
    const echo = section('Raw echo, closed loop');
    expect(row(echo, '100 conn × 64 B', '04 evented').at(-2)).toBe('96% ±1% ⚠');
    expect(echo).toContain('used 90% or more of its core in 2 of 12 measured cells');
  });

  it('shows unfairness and errors from the numbers', () => {
    const echo = section('Raw echo, closed loop');
    expect(row(echo, '100 conn × 64 B', '01 serial')[8]).toBe('0 / 28,200 ±1%');
    expect(echo).toContain('99 of 100 connections were never answered at all');
    expect(echo).toContain('Errors: 02 process/conn at 100 conn × 64 B: 1 (first error: socket: ECONNRESET (connection 7))');
  });

  it('gives every server a row, saying why when it was not measured', () => {
    const http = section('HTTP echo through autocannon');
    expect(row(http, '100 conn, no pipelining', '03 worker pool')[1]).toMatch(/^not run: not built/);
    expect(row(http, '100 conn, no pipelining', 'C epoll')[1]).toBe('n/a: speaks echo only; this scenario needs http');
    const capacity = section('Capacity: idle connections held');
    expect(row(capacity, '100 connections', '01 serial (cannot hold)')[1]).toBe('1');
    expect(capacity).toContain('- 01 serial: cannot hold: 1 of 100 echoed; 99 waited in the accept queue');
    expect(row(capacity, '1,000 connections', '02 process/conn')[1]).toMatch(/^not attempted: 30.0 MiB per connection/);
    expect(capacity).toContain('an open-file limit (`ulimit -n`) of 20,000 for the load generator');
  });

  it('states the cores and the ideal ratio of the CPU-bound scenario', () => {
    const cpu = section('CPU-bound HTTP');
    expect(cpu).toContain('This machine has 2 cores');
    expect(cpu).toContain('an ideal ratio of 2 over one event loop');
    expect(cpu).toContain("Against one event loop (04 evented): 02 process/conn 1.9× 04 evented's");
  });

  it('draws charts from the medians', () => {
    const churn = section('Connection churn');
    expect(churn).toContain('x-axis ["01 serial", "04 evented", "C epoll"]');
    expect(churn).toContain('bar [5100, 9100, 15500]');
  });
});
