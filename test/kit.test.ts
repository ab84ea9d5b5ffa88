/**
 * The experiment kit's judgement, as data: which figures of a table may be called best (never a
 * starved run's, never a capped throughput, never one whose runs spread wider than the figure or
 * than the figures it would tie with), the findings that follow, and the Markdown that bolds
 * exactly those. No server runs here.
 */

import { describe, expect, it } from 'vitest';
import { columnFindings, say } from '../bench/kit/findings.js';
import { parseSettings } from '../bench/kit/command-line.js';
import { rank, renderTable, type Row, type Table } from '../bench/kit/table.js';
import type { Summary } from '../bench/kit/stats.js';
import { UserError } from '../shared/errors.js';

const runs = (median: number, min: number, max: number): Summary => ({ median, min, max, runs: 3 });
const row = (label: string, s: Summary, flags: Partial<Row> = {}): Row => ({ label, cells: [{ summary: s }], ...flags });
const table = (rows: readonly Row[], better: 'higher' | 'lower' = 'lower', throughput = false): Table => ({ columns: [{ header: 'figure', unit: 'count', better, throughput }], rows });

describe('rank', () => {
  it('never calls a starved run best, even with the best figure', () => {
    const t = table([row('starved', runs(10, 9, 11), { starved: true }), row('a', runs(100, 99, 101)), row('b', runs(200, 199, 201))]);
    expect(rank(t, 0)).toMatchObject({ best: [1], next: 2, starved: [0] });
  });

  it('never calls a capped throughput best', () => {
    const t = table([row('capped', runs(1000, 990, 1010), { saturated: true }), row('a', runs(500, 490, 510)), row('b', runs(100, 99, 101))], 'higher', true);
    expect(rank(t, 0)).toMatchObject({ best: [1], saturated: [0] });
    // The same figure in a column that is not a throughput (CPU per round trip) is still fair.
    expect(rank(table(t.rows, 'higher'), 0).best).toEqual([0]);
  });

  it('ties a figure whose range reaches the best only when that range is not wider than the figures', () => {
    const wide = table([row('best', runs(20_000, 19_000, 21_000)), row('wide', runs(35_008, 19_000, 51_000)), row('close', runs(20_500, 19_800, 21_200))]);
    expect(rank(wide, 0)).toMatchObject({ best: [0, 2], next: 1 });
  });

  it('does not rank a figure whose runs spread wider than itself', () => {
    const t = table([row('spread', runs(10, 1, 40)), row('a', runs(100, 99, 101)), row('b', runs(300, 290, 310))]);
    expect(rank(t, 0)).toMatchObject({ best: [1], overSpread: [0] });
  });

  it('keeps the best contiguous, and never bolds a figure whose spread is wider than its distance from the rest', () => {
    // The leader ties with the next and with a wide figure further down; the two between differ from it.
    const t = table([row('leader', runs(6, 5.7, 6.8)), row('close', runs(6.7, 6.6, 7.5)), row('between', runs(7.8, 7.5, 8.1)), row('wide', runs(8.4, 6.5, 10.2)), row('rest', runs(9.8, 9.4, 10.9))]);
    expect(rank(t, 0)).toMatchObject({ best: [0, 1], next: 2 });
    // The same wide figure well apart from the rest: the whole group is best, the figure between included.
    const apart = table([row('leader', runs(6, 5.7, 6.8)), row('between', runs(7.8, 7.5, 8.1)), row('wide', runs(8.4, 6.5, 10.2)), row('rest', runs(20, 19, 21))]);
    expect(rank(apart, 0)).toMatchObject({ best: [0, 1, 2], next: 3 });
  });

  it('calls nothing best when even the leader cannot be told from the next figure', () => {
    // 'next' reaches the leader but spreads wider than the leader's figure, so it does not tie.
    const t = table([row('leader', runs(10, 6, 14)), row('next', runs(11, 3, 14)), row('rest', runs(40, 39, 41))]);
    expect(rank(t, 0)).toMatchObject({ best: [], undecided: true });
    expect(columnFindings(t, 0, 'µs')).toMatchObject([{ kind: 'unranked', reason: 'spread' }]);
  });

  it('calls nothing best when the figure after the group still ties with the leader', () => {
    // bench.md's p50 at 100 connections: 627 ±11% ties with 582 but reaches past 672, so it cannot
    // be bold, and 582 alone would part two figures no different from each other.
    const t = table([row('leader', runs(582, 559, 605)), row('tied', runs(627, 558, 696)), row('rest', runs(672, 645, 699)), row('far', runs(900, 890, 910))]);
    expect(rank(t, 0)).toMatchObject({ best: [], undecided: true });
  });

  it('ranks nothing measured once', () => {
    const once = (v: number): Summary => ({ median: v, min: v, max: v, runs: 1 });
    expect(rank(table([row('a', once(1)), row('b', once(2))]), 0)).toMatchObject({ best: [], singleRuns: true });
  });
});

describe('findings', () => {
  it('are data: a leader with the next figure, the rows left out and why', () => {
    const t = table([row('starved', runs(10, 9, 11), { starved: true }), row('a', runs(100, 99, 101)), row('b', runs(200, 199, 201))]);
    const findings = columnFindings(t, 0, 'CPU per round trip');
    expect(findings.map((f) => f.kind)).toEqual(['leader', 'starved']);
    expect(findings[0]).toMatchObject({ leader: { row: 'a' }, next: { row: 'b' } });
    expect(say(findings[0]!)).toBe('CPU per round trip: least a (100 ±1%); next b (200 ±1%), 2.0× as much.');
  });

  it('say a tie when the best are no different', () => {
    const t = table([row('a', runs(100, 95, 105)), row('b', runs(102, 97, 107)), row('c', runs(300, 290, 310))], 'higher');
    expect(columnFindings(t, 0, 'round trips/s')).toMatchObject([{ kind: 'leader', leader: { row: 'c' }, next: { row: 'b' } }]);
    const close = table([row('a', runs(100, 95, 105)), row('b', runs(102, 97, 107))]);
    expect(columnFindings(close, 0, 'µs')[0]).toMatchObject({ kind: 'tie', figures: [{ row: 'a' }, { row: 'b' }] });
  });
});

describe('a rendered table', () => {
  it('shows no bold on a starved or an over-spread run, and bolds the honest best', () => {
    const t: Table = {
      columns: [
        { header: 'p50 µs', unit: 'us', better: 'lower' },
        { header: 'max µs', unit: 'us', better: 'lower' },
      ],
      rows: [
        { label: '01 starved', starved: true, cells: [{ summary: runs(50, 49, 51) }, { summary: runs(900, 890, 910) }] },
        { label: '02 spread', cells: [{ summary: runs(400, 390, 410) }, { summary: runs(35_008, 19_000, 51_000) }] },
        { label: '04 steady', cells: [{ summary: runs(300, 295, 305) }, { summary: runs(20_000, 19_500, 20_500) }] },
      ],
    };
    const lines = renderTable(t).split('\n');
    expect(lines[2]).not.toContain('**');
    expect(lines[3]).toBe('| 02 spread | 400 ±3% | 35,008 ±46% |');
    expect(lines[4]).toBe('| 04 steady | **300 ±2%** | **20,000 ±3%** |');
  });

  it('bolds one contiguous best group: results/bench.md\'s CPU per round trip, where a wide 8.4 ±22% tied with the best', () => {
    // The committed run's figures (server CPU µs per round trip, 100 connections × 64 B), ranked
    // 5.98, 6.66, 7.82, 8.00, 8.20, 8.44, 9.75: 8.44's runs (6.54-10.24) reach the leader, but its
    // spread (±1.85) is wider than its distance from 9.75, and 7.82-8.20 differ from the leader.
    const t: Table = {
      columns: [{ header: 'CPU µs/round trip', unit: 'cpuUs', better: 'lower' }],
      rows: [
        row('05 (epoll, level)', runs(8.44, 6.54, 10.24)),
        row('05 (epoll, edge)', runs(8.2, 8.12, 9.09)),
        row('05 (poll)', runs(6.66, 6.62, 7.51)),
        row('07 (batch)', runs(7.82, 7.51, 8.13)),
        row('07 (each)', runs(9.75, 9.4, 10.91)),
        row('07 (sqpoll)', runs(8, 7.9, 8.41)),
        row('C epoll', runs(5.98, 5.66, 6.81)),
      ],
    };
    expect(renderTable(t).split('\n').slice(2)).toEqual([
      '| 05 (epoll, level) | 8.4 ±22% |',
      '| 05 (epoll, edge) | 8.2 ±6% |',
      '| 05 (poll) | **6.7 ±7%** |',
      '| 07 (batch) | 7.8 ±4% |',
      '| 07 (each) | 9.8 ±8% |',
      '| 07 (sqpoll) | 8.0 ±3% |',
      '| C epoll | **6.0 ±10%** |',
    ]);
    expect(columnFindings(t, 0, 'CPU µs/round trip').map(say)).toEqual([
      "CPU µs/round trip: C epoll (6.0 ±10%) and 05 (poll) (6.7 ±7%) are best, no different within their runs' spread; next 07 (batch) (7.8 ±4%).",
    ]);
  });
});

describe('options', () => {
  const specs = {
    rounds: { type: 'number', default: 40, quick: 10, min: 4, integer: true, describe: 'rounds' },
    labs: { type: 'list', default: ['a', 'b'], choices: ['a', 'b', 'c'], describe: 'labs' },
  } as const;

  it('are typed from their declaration, with quick-run defaults', () => {
    expect(parseSettings('x', 'test', specs, [])).toMatchObject({ rounds: 40, labs: ['a', 'b'], quick: false });
    expect(parseSettings('x', 'test', specs, ['--quick', '--labs', 'a,c'])).toMatchObject({ rounds: 10, labs: ['a', 'c'], quick: true });
  });

  it('refuse a value out of range or not among the choices, in one line', () => {
    expect(() => parseSettings('x', 'test', specs, ['--rounds', '2'])).toThrow(new UserError('--rounds must be a whole number from 4 up, got 2'));
    expect(() => parseSettings('x', 'test', specs, ['--labs', 'd'])).toThrow(UserError);
  });
});
