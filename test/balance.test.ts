/**
 * The balance experiment (bench/balance/): its report rendered from a hand-made results file
 * (test/fixtures/balance-results.json; the figures are invented, chosen so every sentence that
 * depends on a number has a case), its loader's refusal of another schema, and one short real run
 * of the spread step against lab 06.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findLabs } from '../bench/balance/compared-labs.js';
import { balance } from '../bench/balance/main.js';
import type { BalanceReport } from '../bench/balance/results.js';
import { readReport, renderMarkdown } from '../bench/kit/experiment.js';
import { measureSpread } from '../bench/balance/spread.js';
import { stopAllLabs } from '../harness/launch.js';
import { UserError } from '../shared/errors.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'balance-results.json');
const renderBalanceReport = (r: BalanceReport) => renderMarkdown(balance, r);
const report = renderBalanceReport(readReport(balance, FIXTURE));
const lines = report.split('\n');

/** The table row that starts with these cells, under the heading `heading`. */
function row(heading: string, ...first: string[]): string {
  const from = lines.indexOf(heading);
  expect(from, heading).toBeGreaterThanOrEqual(0);
  const found = lines.slice(from).find((line) => line.startsWith(`| ${first.join(' | ')} |`));
  expect(found, `${first.join(', ')} under ${heading}`).toBeDefined();
  return found!;
}

afterEach(async () => {
  await stopAllLabs();
});

describe('balance report, from the fixture', () => {
  it('shows each spread run with its per-worker counts, min, max and standard deviation', () => {
    expect(row('### 2 workers', 'shared', '40 over 1 s')).toBe('| shared | 40 over 1 s | 30 | 10 | 10 | 30 | 10.0 | 75% | 0 |');
    expect(row('### 4 workers', 'shared', '200 at once')).toBe('| shared | 200 at once | 135 | 11 | 24 | 30 | 11 | 135 | 49.6 | 68% | 0 |');
    expect(row('### 4 workers', 'reuseport', '200 at once')).toBe('| reuseport | 200 at once | 47 | 54 | 40 | 58 | 40 | 58 | 6.9 | 29% | 1 |');
    expect(lines.indexOf('## Summary')).toBeLessThan(40);
    expect(report).toContain('![CPU-bound requests/s on 2 cores](balance-summary.svg)');
  });

  it('says what the spread numbers show, policy by policy', () => {
    expect(report).toContain("**handoff.** In every run the loops' counts differed by at most 1: an even split.");
    expect(report).toContain(
      '**shared.** Its most uneven run (4 workers, 200 at once) gave the busiest loop 135 of 200 connections (68%, where an even share is 25%) and the least busy 11.',
    );
    expect(report).toContain('**reuseport.** Its most uneven run (2 workers, 40 over 1 s) gave the busiest loop 22 of 40 connections (55%, where an even share is 50%)');
  });

  it('shows the stalled-worker probes: percentiles, slow ones, and which went to the stalled loop', () => {
    const heading = '## 2. A stalled worker';
    expect(row(heading, 'handoff')).toBe('| handoff | worker 0 | 2.3 s | 4 | 2 | 2 | 150 | 1900 | 1900 |');
    expect(row(heading, 'shared')).toBe('| shared | worker 1 | 2.1 s | 4 (1 unanswered) | 0 (+1 unknown) | 0 | 120 | 250 | 250 |');
    expect(report).toContain('   375 ms  worker 0  1900 ms  ← the stalled loop');
    expect(report).toContain(
      '**reuseport.** 2 of 4 probes went to the stalled loop (worker 0; 1 in 2 would be 2); 2 waited more than 500 ms, and the slowest took 2100 ms (median 160 ms).',
    );
    expect(report).not.toContain('**The stall ran long.**');
    expect(report).toContain('Counted as held when shared sent no probe to the stalled loop and the others sent at least one: it held for handoff, shared, reuseport.');
  });

  it('compares lab 06 with lab 04 against the goal, and names a loop left without connections', () => {
    const heading = '## 3. Scaling: CPU-bound requests per second';
    expect(row(heading, '06 loop per core', 'shared', '2')).toBe('| 06 loop per core | shared | 2 | 1,500 | 1.50 | 1.00 | 9 | 1,500 | 9,000 / 0 | 10 / 0 | 0 |');
    expect(row(heading, '03 worker pool')).toBe('| 03 worker pool | – | 2 | 850 | 0.85 | 1.20 | 6 | 708 | – | – | 0 |');
    expect(report).toContain(
      '04 evented answered 1,000 requests/s on its one loop. With 2 workers the ideal is 2× that and the goal 1.8×: handoff 1,800 requests/s, 1.80× (meets the goal); ' +
        'shared 1,500 requests/s, 1.50× (short of the goal); reuseport 1,750 requests/s, 1.75× (short of the goal). 03 worker pool with 2 threads: 850 requests/s, 0.85×',
    );
    expect(report).toContain('Each is a single run, with no repeat to measure its spread, so the policies are not ranked against one another (1,500 to 1,800 requests/s): only the goal is a verdict.');
    expect(report).toContain('In the handoff run with 2 workers the server kept 1.85 of the 2 cores busy and autocannon 12% of one');
    expect(report).not.toContain('**A caution.**');
    expect(report).toContain("**A loop left without connections.** In shared with 2 workers, a loop got none of autocannon's 10 connections (10 / 0)");
  });

  it('warns when a run got less CPU than its threads could use, and gives requests per CPU-second', () => {
    const fixture = readReport(balance, FIXTURE);
    const runs = fixture.results.scaling.runs.map((run) => (run.policy === undefined && run.cores === 1 ? { ...run, requestsPerSec: 700, serverCores: 0.74 } : run));
    const noisy = renderBalanceReport({ ...fixture, results: { ...fixture.results, scaling: { ...fixture.results.scaling, runs } } });
    expect(noisy).toContain(
      '**A caution.** 04 evented got 0.74 cores for its 1 busy thread: other programs on the machine (and autocannon) took the rest, so ratios involving these runs say as much about the machine as about the model. ' +
        'Requests per CPU-second depend much less on how much CPU a run got: 04 evented 946, handoff 973, shared 1,500, reuseport 972. Measure again on a quiet machine to compare requests/s.',
    );
  });

  it('refuses a results file of another schema or experiment with one line', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'balance-schema-'));
    try {
      const file = path.join(dir, 'balance.json');
      const fixture = readReport(balance, FIXTURE);
      writeFileSync(file, JSON.stringify({ ...fixture, schema: 99 }));
      expect(() => readReport(balance, file)).toThrow(/has schema 99; this renderer reads schema 1: measure again with make balance$/);
      expect(() => readReport(balance, file)).toThrow(UserError);
      writeFileSync(file, JSON.stringify({ ...fixture, experiment: 'nagle' }));
      expect(() => readReport(balance, file)).toThrow(/holds results of the nagle experiment, not balance$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('balance spread step, for real', () => {
  it('counts 40 connections over 2 workers from the shutdown summary (handoff: 20 each)', async () => {
    const { loops } = findLabs();
    const handoff = loops.variants.find((v) => v.args.includes('handoff'));
    expect(handoff, 'a handoff variant of lab 06').toBeDefined();
    const run = await measureSpread(loops.id, handoff!, 2, { name: 'light', connections: 40, overMs: 400 });
    expect(run.failed).toBe(0);
    expect(run.perWorker).toHaveLength(2);
    expect(run.perWorker.reduce((a, b) => a + b, 0)).toBe(40);
    // Round-robin in the acceptor: exact by construction.
    expect(run.perWorker).toEqual([20, 20]);
  });
});
