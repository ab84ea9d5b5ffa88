/**
 * "What this shows": each scenario's findings, written from the numbers in the results file and
 * nothing else. Every sentence is a template filled with measured figures, and comparisons say
 * "no difference" when two figures are within the runs' spread (pipeline/stats.ts, differs). Nothing here knows which lab should win.
 */

import { C_REFERENCE_ID, PLAIN_NODE_ID, type BenchResults, type CellSpec, type MetricName, type ScenarioResult, type TargetInfo } from '../results.js';
import { oneEventLoop } from '../../kit/labs.js';
import { differs, type Summary } from '../../kit/stats.js';
import { formatBytes } from '../../../shared/log.js';
import { formatRatio, formatValue } from './format.js';
import { clientSaturated, metricOf, rowsFor, SATURATED_PCT, starved, statusText, type Row } from './table.js';

interface Measured {
  readonly row: Row;
  readonly value: Summary;
}

const name = (row: Row) => row.target.label;
const rate = (s: Summary) => formatValue(s.median, 'rate');
const us = (s: Summary) => formatValue(s.median, 'us');

/** The rows with a value for `metric` in `cell`, best first. */
function ranked(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[], metric: MetricName, better: 'higher' | 'lower'): Measured[] {
  return rowsFor(scenario, cell, targets)
    .filter((row) => row.result?.status === 'ok')
    .map((row) => ({ row, value: metricOf(row, metric) }))
    .filter((m): m is Measured => m.value !== undefined)
    .sort((a, b) => (better === 'higher' ? b.value.median - a.value.median : a.value.median - b.value.median));
}

/** "2.4× X's 9,500" or "no different from X's 9,500, within the runs' spread". */
function versus(a: Summary, b: Summary, other: string, shown = ''): string {
  const theirs = `${other}'s${shown ? ` ${shown}` : ''}`;
  if (!differs(a, b)) return `no different from ${theirs}, within the runs' spread`;
  // A ratio to zero or to a negative figure (noise around zero) says nothing.
  return b.median <= 0 ? `where ${other} measured ${shown || formatValue(b.median, 'count')}` : `${formatRatio(a.median / b.median)} ${theirs}`;
}

/**
 * A list in order, each entry whose runs' range overlaps the first of its group joined to that
 * group as no different: "A 3.0; B 3.5, C 3.5 (no different, within the runs' spread); D 6.2".
 * An order is told only where the runs differ by more than they varied.
 */
function inOrder(list: readonly Measured[], text: (m: Measured) => string): string {
  const groups: Measured[][] = [];
  for (const m of list) {
    const group = groups.at(-1);
    if (group && !differs(group[0]!.value, m.value)) group.push(m);
    else groups.push([m]);
  }
  return groups.map((g) => (g.length === 1 ? text(g[0]!) : `${g.map(text).join(', ')} (no different, within the runs' spread)`)).join('; ');
}

/** The last cell whose params satisfy `pick`: the headline cell of a section. */
function headline(scenario: ScenarioResult, pick: (p: Readonly<Record<string, number>>) => boolean): CellSpec | undefined {
  return scenario.cells.filter((c) => pick(c.params)).at(-1);
}

/** Cells where some run's load generator used at least SATURATED_PCT of its core. */
function saturation(scenario: ScenarioResult, targets: readonly TargetInfo[], unit: string): string {
  const hits: string[] = [];
  let measured = 0;
  for (const cell of scenario.cells) {
    for (const row of rowsFor(scenario, cell, targets)) {
      if (row.result?.status !== 'ok') continue;
      measured++;
      const pct = metricOf(row, 'loadGenCorePct');
      if (pct && pct.max >= SATURATED_PCT) hits.push(`${name(row)} at ${cell.title}`);
    }
  }
  if (hits.length === 0) return `The load generator stayed below ${SATURATED_PCT}% of its core in every run, so it did not limit these throughputs.`;
  return (
    `The load generator used ${SATURATED_PCT}% or more of its core in ${hits.length} of ${measured} measured cells ` +
    `(${hits.join('; ')}): there the throughput is the client's ceiling, not the server's, and the CPU µs per ${unit} column is the fairer comparison.`
  );
}

function errorsLine(scenario: ScenarioResult, targets: readonly TargetInfo[], metrics: MetricName[], what: string): string {
  const found: string[] = [];
  for (const cell of scenario.cells) {
    for (const row of rowsFor(scenario, cell, targets)) {
      const runs = row.result?.runs ?? [];
      const sum = runs.reduce((acc, r) => acc + metrics.reduce((a, m) => a + (r.metrics[m] ?? 0), 0), 0);
      if (sum > 0) {
        const first = runs.flatMap((r) => r.notes).find((n) => n.startsWith('first error'));
        found.push(`${name(row)} at ${cell.title}: ${sum}${first ? ` (${first})` : ''}`);
      }
    }
  }
  return found.length === 0 ? `No run saw ${what}.` : `Errors: ${found.join('; ')}.`;
}

function notMeasured(scenario: ScenarioResult, targets: readonly TargetInfo[]): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const cell of scenario.cells) {
    for (const row of rowsFor(scenario, cell, targets)) {
      const status = row.result?.status;
      if (status === 'ok' || status === 'cannot' || status === 'not-attempted') continue;
      const text = `${name(row)}: ${statusText(row.result)}`;
      if (!seen.has(text)) lines.push(text);
      seen.add(text);
    }
  }
  return lines.length ? [`Not measured here: ${lines.join('; ')}.`] : [];
}

/** "C epoll 3.4" for a row's server CPU µs per unit. */
const cpuText = (m: Measured) => `${name(m.row)} ${formatValue(m.value.median, 'cpuUs')}`;
const pct = (row: Row) => formatValue(metricOf(row, 'loadGenCorePct')?.median ?? 0, 'pct');
const cores = (row: Row) => {
  const c = metricOf(row, 'serverCores');
  return c ? `${formatValue(c.median, 'cores')} cores` : 'an unmeasured share of a core';
};

/**
 * The headline of a cell, leading with the fair figure:
 *   - throughput is ranked only among servers whose load generator stayed below SATURATED_PCT of
 *     its core and whose every connection was served: elsewhere the total is the client's
 *     ceiling, or one connection's run while the others waited;
 *   - a server whose client saturated leads with its CPU per unit, its throughput named the
 *     client's ceiling, with both cores' use;
 *   - a server whose least-served connection got nothing leads with that, never as "the most".
 */
function leadWithFairFigure(
  scenario: ScenarioResult,
  cell: CellSpec,
  targets: readonly TargetInfo[],
  metric: MetricName,
  what: { readonly plural: string; readonly unit: string; readonly verb: string; readonly perSecond: string },
): string[] {
  const all = ranked(scenario, cell, targets, metric, 'higher');
  if (all.length === 0) return [];
  const lines: string[] = [];
  const fair = all.filter((m) => !clientSaturated(m.row) && !starved(m.row));
  const [first, second] = fair;
  // "The most" only when no other server that served every connection measured the same within
  // the runs' spread: a saturated one included, whose figure is its client's ceiling, so the
  // cut-off between the two groups never decides a near-tie.
  const ties = first ? all.filter((m) => m !== first && !starved(m.row) && !differs(first.value, m.value)) : [];
  if (first && first.value.runs < 2) {
    lines.push(`At ${cell.title} every server ran once: with no spread to tell a difference from noise, none is ranked.`);
  } else if (first && ties.length > 0) {
    const tied = ties.map((m) => `${name(m.row)}'s ${rate(m.value)}${what.perSecond}${clientSaturated(m.row) ? " (its load generator's ceiling)" : ''}`);
    lines.push(
      `At ${cell.title} no server ${what.verb} clearly the most ${what.plural}: ${name(first.row)}'s ${rate(first.value)}${what.perSecond} is no different from ` +
        `${tied.join(', ')}, within the runs' spread.`,
    );
  } else if (first) {
    const among = fair.length < all.length ? ', among the servers whose load generator kept up and that served every connection' : '';
    lines.push(
      `At ${cell.title}${among}, ${name(first.row)} ${what.verb} the most ${what.plural}: ${rate(first.value)}${what.perSecond}` +
        (second ? `, ${versus(first.value, second.value, name(second.row), `${rate(second.value)}${what.perSecond}`)}.` : '.'),
    );
  }
  const saturated = all.filter((m) => clientSaturated(m.row) && !starved(m.row));
  if (saturated.length) {
    const parts = saturated.map((m) => {
      const cpu = metricOf(m.row, 'cpuUsPerUnit');
      return (
        `${name(m.row)} ${cpu ? `${formatValue(cpu.median, 'cpuUs')} server CPU µs per ${what.unit}` : 'no server CPU figure'}` +
        ` (its ${rate(m.value)}${what.perSecond} is the client's ceiling: load generator ${pct(m.row)} of its core, server ${cores(m.row)})`
      );
    });
    lines.push(`At ${cell.title} the load generator saturated against ${saturated.map((m) => name(m.row)).join(', ')}, so their throughput ranks nothing; by the server's CPU: ${parts.join('; ')}.`);
  }
  for (const m of all.filter((x) => starved(x.row))) {
    const most = metricOf(m.row, 'most');
    const never = metricOf(m.row, 'neverAnswered');
    lines.push(
      `${name(m.row)} at ${cell.title}: its least-served connection got 0 ${what.plural} while its most-served got ${formatValue(most?.median ?? 0, 'count')}` +
        (never && never.median > 0 ? ` (${formatValue(never.median, 'count')} of ${cell.params.connections} connections never answered)` : '') +
        `: its ${rate(m.value)}${what.perSecond} comes from the connections it answered in the window, not from a share for each, so it is not ranked.`,
    );
  }
  return lines;
}

/**
 * Server CPU per round trip at a cell, cheapest first, then the gap split at the two references:
 * C → plain Node is what Node costs, plain Node → lab what the lab's model costs.
 */
function costSplit(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[], unit: string): string[] {
  const cpu = ranked(scenario, cell, targets, 'cpuUsPerUnit', 'lower');
  if (cpu.length === 0) return [];
  const lines = [`Server CPU µs per ${unit} at ${cell.title}, cheapest first (the fair figure whoever set the pace): ${inOrder(cpu, cpuText)}.`];
  const c = cpu.find((m) => m.row.target.id === C_REFERENCE_ID);
  const node = cpu.find((m) => m.row.target.id === PLAIN_NODE_ID);
  if (c && node) {
    lines.push(
      `What Node costs: plain Node spent ${formatValue(node.value.median, 'cpuUs')} µs per ${unit}, the C reference ${formatValue(c.value.median, 'cpuUs')} ` +
        `(${versus(node.value, c.value, 'the C reference')}).`,
    );
  }
  if (node) {
    const labs = cpu.filter((m) => m.row.target.kind === 'lab').map((m) => {
      const over = node.value.median > 0 ? (m.value.median - node.value.median) / node.value.median : 0;
      const sign = over >= 0 ? '+' : '−';
      const overlap = !differs(m.value, node.value);
      const close =
        Math.abs(over) <= 0.05
          ? `within 5%${overlap ? ", within the runs' spread" : ''}`
          : overlap
            ? "no different, within the runs' spread"
            : `more than 5% apart: ${formatRatio(m.value.median / node.value.median)}`;
      return `${name(m.row)} ${sign}${formatValue(Math.abs(m.value.median - node.value.median), 'cpuUs')} µs (${sign}${Math.round(Math.abs(over) * 100)}%, ${close})`;
    });
    if (labs.length) lines.push(`What each model costs over plain Node per ${unit}: ${labs.join('; ')}.`);
  }
  if (c && clientSaturated(c.row)) {
    const client = metricOf(c.row, 'loadGenCpuUsPerUnit');
    lines.push(
      `Against the C reference the load generator saturated: it used ${pct(c.row)} of its core while the server kept ${cores(c.row)} busy` +
        (client ? `, the client spending ${formatValue(client.median, 'cpuUs')} µs per ${unit} to the server's ${formatValue(c.value.median, 'cpuUs')}` : '') +
        `. A one-core client costs about as much as this server per ${unit} (on loopback the sender also pays for the receiver's softirq work), ` +
        `so the reference's throughput here is the client's ceiling, not the server's.`,
    );
  }
  return lines;
}

/** Fairness, from the fewest/most columns (and, for echo, the connections never answered). */
function fairness(scenario: ScenarioResult, targets: readonly TargetInfo[], what: string): string[] {
  const unfair: string[] = [];
  let fairWorst = 1;
  let fairCells = 0;
  for (const c of scenario.cells) {
    if ((c.params.connections ?? 1) < 2) continue;
    for (const row of rowsFor(scenario, c, targets)) {
      if (row.result?.status !== 'ok') continue;
      const fewest = metricOf(row, 'fewest');
      const most = metricOf(row, 'most');
      const never = metricOf(row, 'neverAnswered');
      if (!fewest || !most) continue;
      if (fewest.median === 0) {
        unfair.push(
          `${name(row)} at ${c.title}: the most-served connection got ${formatValue(most.median, 'count')} ${what}, the least-served 0` +
            (never && never.median > 0 ? `, and ${formatValue(never.median, 'count')} of ${c.params.connections} connections were never answered at all` : ''),
        );
      } else {
        fairCells++;
        fairWorst = Math.max(fairWorst, most.median / fewest.median);
      }
    }
  }
  const lines = unfair.length ? [`Fairness: ${unfair.join('; ')}.`] : [];
  if (fairCells > 0) {
    lines.push(
      `${unfair.length ? 'Elsewhere every' : 'Every'} connection was served, the most-served getting at most ${formatRatio(fairWorst)} the ${what} of the least-served.`,
    );
  }
  return lines;
}

/**
 * A server that starts a process per connection has two costs: the steady one per round trip
 * (the table's, measured after the warm-up: once every connection has been answered, or at its
 * bound) and the start-up one per
 * connection (its server CPU over the warm-up, less the warm-up's round trips at the steady rate).
 */
function startUpCost(scenario: ScenarioResult, cell: CellSpec, targets: readonly TargetInfo[]): string[] {
  return rowsFor(scenario, cell, targets).flatMap((row) => {
    if (row.result?.status !== 'ok' || !row.target.traits?.children) return [];
    const start = metricOf(row, 'startCpuUsPerConnection');
    const steady = metricOf(row, 'cpuUsPerUnit');
    const warmup = metricOf(row, 'warmupS');
    if (!start || !steady || !warmup) return [];
    const bound = row.result.runs.filter((run) => run.notes.some((n) => n.startsWith('the warm-up hit its'))).length;
    const runs = row.result.runs.length;
    return [
      `${name(row)} at ${cell.title}: ${formatValue(steady.median, 'cpuUs')} server CPU µs per round trip in the steady state (the table's figure, ` +
        (bound === 0
          ? 'measured once every connection had been answered'
          : `measured after the warm-up, which in ${bound} of ${runs} runs hit its bound with some connections still unanswered`) +
        `), and ${formatValue(start.median, 'cpuUs')} µs of server CPU per connection to start up ` +
        `(its process; the warm-up took a median of ${warmup.median.toFixed(1)} s` +
        (bound === 0 ? ' to get every connection answered once' : '') +
        ').',
    ];
  });
}

function echoFindings(scenario: ScenarioResult, targets: readonly TargetInfo[], settings: Record<string, unknown>): string[] {
  const sizes = settings.sizes as number[];
  const lines: string[] = [];
  const cell = headline(scenario, (p) => p.messageBytes === Math.min(...sizes));
  if (cell) {
    lines.push(...leadWithFairFigure(scenario, cell, targets, 'roundTripsPerSec', { plural: 'round trips', unit: 'round trip', verb: 'completed', perSecond: '/s' }));
    lines.push(...costSplit(scenario, cell, targets, 'round trip'));
  }

  if (cell) lines.push(...startUpCost(scenario, cell, targets));
  lines.push(...fairness(scenario, targets, 'round trips'));
  lines.push(saturation(scenario, targets, 'round trip'));
  lines.push(errorsLine(scenario, targets, ['errors'], 'a corrupted, missing or extra byte, or a failed connection'));
  return [...lines, ...notMeasured(scenario, targets)];
}

function httpFindings(scenario: ScenarioResult, targets: readonly TargetInfo[], settings: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const cell of scenario.cells) {
    lines.push(...leadWithFairFigure(scenario, cell, targets, 'requestsPerSec', { plural: 'requests', unit: 'request', verb: 'answered', perSecond: ' req/s' }));
  }
  // What pipelining changed, per server, at the largest connection count.
  const connections = Math.max(...(settings.httpConnections as number[]));
  const plain = headline(scenario, (p) => p.connections === connections && p.pipelining === 1);
  const piped = headline(scenario, (p) => p.connections === connections && p.pipelining !== 1);
  if (plain && piped) {
    const changes = ranked(scenario, plain, targets, 'requestsPerSec', 'higher').flatMap((m) => {
      const after = ranked(scenario, piped, targets, 'requestsPerSec', 'higher').find((x) => x.row.target.id === m.row.target.id);
      if (!after) return [];
      return [`${name(m.row)} ${rate(m.value)} → ${rate(after.value)} (${!differs(after.value, m.value) ? 'no difference' : formatRatio(after.value.median / (m.value.median || 1))})`];
    });
    if (changes.length) lines.push(`Pipelining ${piped.params.pipelining} at ${connections} connections changed req/s: ${changes.join('; ')}.`);
  }
  lines.push(...fairness(scenario, targets, 'responses'));
  lines.push(saturation(scenario, targets, 'request'));
  lines.push(errorsLine(scenario, targets, ['errors', 'timeouts', 'non2xx', 'mismatches'], 'an error, a timeout, a non-2xx response or a wrong body'));
  return [...lines, ...notMeasured(scenario, targets)];
}

function cpuFindings(scenario: ScenarioResult, targets: readonly TargetInfo[]): string[] {
  const facts = scenario.facts as { cores?: number; workUs?: number; oneCoreCeiling?: number; idealRatio?: number };
  const lines: string[] = [];
  const cell = scenario.cells[0];
  if (!cell || facts.cores === undefined || facts.oneCoreCeiling === undefined) return notMeasured(scenario, targets);
  lines.push(
    `This machine has ${facts.cores} cores. With ${formatValue(facts.workUs!, 'count')} µs of work per request, one core can finish at most ` +
      `${formatValue(facts.oneCoreCeiling, 'rate')} req/s, so a model that spreads the work over all ${facts.cores} cores (with ${cell.params.connections} ` +
      `connections to keep them busy) could reach at most ${formatValue(facts.oneCoreCeiling * facts.idealRatio!, 'rate')} req/s: an ideal ratio of ` +
      `${facts.idealRatio} over one event loop.`,
  );
  const all = ranked(scenario, cell, targets, 'requestsPerSec', 'higher');
  const parts = all.map((m) => {
    const cores = metricOf(m.row, 'serverCores');
    return `${name(m.row)} ${rate(m.value)} req/s (${formatRatio(m.value.median / facts.oneCoreCeiling!)} one core's ceiling${cores ? `, ${formatValue(cores.median, 'cores')} cores busy` : ''})`;
  });
  if (parts.length) lines.push(`Measured: ${parts.join('; ')}.`);
  // The baseline is the first lab, in the registry's order, that is one event loop and nothing
  // more: found by its traits, and not a multi-core lab (lab 06's loops are each one event loop).
  const baseline = targets.find((t) => t.kind === 'lab' && t.traits !== undefined && oneEventLoop(t.traits) && !t.multiCore);
  const loop = all.find((m) => m.row.target.id === baseline?.id);
  if (loop && !clientSaturated(loop.row)) {
    const others = all.filter((m) => m !== loop && !clientSaturated(m.row) && !starved(m.row)).map((m) => `${name(m.row)} ${versus(m.value, loop.value, name(loop.row))}`);
    if (others.length) lines.push(`Against one event loop (${name(loop.row)}): ${others.join('; ')}; the ideal ratio is ${facts.idealRatio}.`);
  }
  lines.push(...fairness(scenario, targets, 'responses'));
  lines.push(saturation(scenario, targets, 'request'));
  lines.push(errorsLine(scenario, targets, ['errors', 'timeouts', 'non2xx', 'mismatches'], 'an error, a timeout, a non-2xx response or a wrong body'));
  return [...lines, ...notMeasured(scenario, targets)];
}

function churnFindings(scenario: ScenarioResult, targets: readonly TargetInfo[]): string[] {
  const lines: string[] = [];
  const cell = scenario.cells[0];
  if (!cell) return lines;
  const measuredAll = ranked(scenario, cell, targets, 'connectionsPerSec', 'higher');
  // Only where the load generator kept up is a rate the server's; the CPU line below covers the rest.
  const all = measuredAll.filter((m) => !clientSaturated(m.row));
  const ceiling = measuredAll.filter((m) => clientSaturated(m.row));
  if (ceiling.length) {
    lines.push(
      `Against ${ceiling.map((m) => `${name(m.row)} (${rate(m.value)}/s; load generator ${pct(m.row)} of its core, server ${cores(m.row)})`).join(', ')} the load generator saturated: ` +
        'those rates are its ceiling and are not ranked; the server CPU per connection below compares them.',
    );
  }
  if (all.length) {
    const best = all[0]!;
    // "The most" only when it differs by more than the runs varied from every other rate (a
    // saturated one included: the cut-off between the two groups must not decide a near-tie).
    const tied = measuredAll.some((m) => m !== best && !differs(best.value, m.value));
    lines.push(
      (tied ? `No server turned over clearly the most connections (the top rates are within the runs' spread): ${name(best.row)} ${rate(best.value)}/s. ` : `${name(best.row)} turned over the most connections: ${rate(best.value)}/s. `) +
        all
          .slice(1)
          .map((m) => `${name(m.row)}: ${rate(m.value)}/s (${versus(m.value, best.value, name(best.row))})`)
          .join('; ') +
        (all.length > 1 ? '.' : ''),
    );
    const latency = all
      .map((m) => ({ m, p50: metricOf(m.row, 'firstEchoP50Us') }))
      .filter((x) => x.p50)
      .map((x) => `${name(x.m.row)} ${us(x.p50!)} µs`);
    if (latency.length) lines.push(`Median connect-to-first-echo: ${latency.join('; ')}.`);
    const forking = all.map((m) => ({ m, p: metricOf(m.row, 'peakProcesses') })).filter((x) => x.p && x.p.max > 1);
    for (const { m, p } of forking) lines.push(`${name(m.row)}'s tree reached ${formatValue(p!.max, 'count')} processes at a sample.`);
  }
  const cpu = ranked(scenario, cell, targets, 'cpuUsPerUnit', 'lower');
  if (cpu.length > 1) {
    const cheapest = cpu[0]!;
    lines.push(
      `Server CPU per connection: ${cpu.map((m) => `${name(m.row)} ${formatValue(m.value.median, 'cpuUs')} µs${m === cheapest ? '' : ` (${versus(m.value, cheapest.value, name(cheapest.row))})`}`).join('; ')}.`,
    );
  }
  lines.push(saturation(scenario, targets, 'connection'));
  lines.push(errorsLine(scenario, targets, ['errors'], 'a failed connect, a reset, or a wrong or short echo'));
  return [...lines, ...notMeasured(scenario, targets)];
}

function capacityFindings(scenario: ScenarioResult, targets: readonly TargetInfo[]): string[] {
  const lines: string[] = [];
  const facts = scenario.facts as { openFileLimit?: number; memAvailableBytes?: number };
  if (facts.openFileLimit !== undefined || facts.memAvailableBytes !== undefined) {
    const parts = [
      facts.openFileLimit !== undefined ? `an open-file limit (\`ulimit -n\`) of ${formatValue(facts.openFileLimit, 'count')} for the load generator, which the servers it starts inherit` : '',
      facts.memAvailableBytes !== undefined ? `${formatBytes(facts.memAvailableBytes)} of memory available` : '',
    ].filter(Boolean);
    lines.push(`Limits at the start: ${parts.join(', and ')}.`);
  }
  for (const target of targets) {
    const results = scenario.cells.map((cell) => ({ cell, row: { target, result: scenario.results.find((r) => r.target === target.id && r.cell === cell.key) } }));
    if (results.every((r) => !r.row.result || ['unavailable', 'not-applicable', 'failed'].includes(r.row.result.status))) continue;
    const held = results.filter((r) => r.row.result?.status === 'ok').at(-1);
    const firstNot = results.find((r) => r.row.result?.status !== 'ok');
    let text = held
      ? `${target.label} held ${held.cell.title}, every one echoing` +
        (() => {
          const per = metricOf(held.row, 'bytesPerConnection');
          return per ? `, at ${formatBytes(per.median)} of memory per connection` : '';
        })()
      : `${target.label} held none of the levels`;
    if (firstNot?.row.result) text += `; at ${firstNot.cell.title}: ${statusText(firstNot.row.result)}`;
    lines.push(`${text}.`);
  }
  // Memory per connection side by side at the smallest level, as measured: a ratio to a server
  // that keeps nothing per connection (about 0, either side of it by a page or two) means nothing.
  const first = scenario.cells[0];
  if (first) {
    const all = ranked(scenario, first, targets, 'bytesPerConnection', 'lower');
    if (all.length > 1) {
      const shown = all.map((m) => `${name(m.row)} ${formatBytes(m.value.median)}${m.value.median <= 0 ? ' (no growth: the tree did not grow while holding them)' : ''}`);
      lines.push(`Memory per connection at ${first.title}: ${shown.join('; ')}.`);
    }
  }
  return [...lines, ...notMeasured(scenario, targets)];
}

/** "0.10", "−2.75": a slope with a real minus sign (none on a figure that rounds to 0.00). */
const signed = (n: number) => `${n <= -0.005 ? '−' : ''}${Math.abs(n).toFixed(2)}`;

/** Least-squares slope of y over x; undefined with fewer than two distinct x. */
function slope(points: readonly { x: number; y: number }[]): number | undefined {
  if (new Set(points.map((p) => p.x)).size < 2) return undefined;
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
}

function idleFindings(scenario: ScenarioResult, targets: readonly TargetInfo[]): string[] {
  const lines: string[] = [];
  const facts = scenario.facts as { fdLimit?: number; fdLimitBefore?: number };
  if (facts.fdLimit !== undefined) {
    lines.push(
      `Descriptor limit: the harness ran with an open-file limit of ${formatValue(facts.fdLimit, 'count')}` +
        (facts.fdLimitBefore !== undefined && facts.fdLimitBefore !== facts.fdLimit
          ? ` (raised from ${formatValue(facts.fdLimitBefore, 'count')} with \`prlimit\` before the first server started)`
          : ' (enough for the largest level, so it was not raised)') +
        '; every server it started inherited that limit.',
    );
  }
  const cells = [...scenario.cells].sort((a, b) => a.params.idle! - b.params.idle!);
  const first = cells[0];
  const last = cells.at(-1);
  /** `changed`: the last level's runs differ from the first's by more than they varied. */
  const slopes: { row: Row; perThousand: number; changed: boolean }[] = [];
  for (const target of rowsFor(scenario, cells[0]!, targets).map((r) => r.target)) {
    const points = cells.flatMap((cell) => {
      const row = rowsFor(scenario, cell, [target])[0]!;
      const cpu = row.result?.status === 'ok' ? metricOf(row, 'cpuUsPerUnit') : undefined;
      return cpu ? [{ cell, row, cpu }] : [];
    });
    if (points.length === 0) continue;
    const perThousand = slope(points.map((p) => ({ x: p.cell.params.idle! / 1000, y: p.cpu.median })));
    const levels = points.map((p) => `${formatValue(p.cpu.median, 'cpuUs')} µs at ${formatValue(p.cell.params.idle!, 'count')} idle`).join(', ');
    const from = points[0]!;
    const to = points.at(-1)!;
    const idleOf = (p: typeof from) => formatValue(p.cell.params.idle!, 'count');
    const trend =
      points.length < 2
        ? ''
        : !differs(to.cpu, from.cpu)
          ? `: no change from ${idleOf(from)} to ${idleOf(to)} idle, within the runs' spread`
          : `: ${formatRatio(to.cpu.median / (from.cpu.median || 1))} from ${idleOf(from)} to ${idleOf(to)} idle`;
    lines.push(
      `${target.label}: server CPU per busy round trip ${levels}` +
        (perThousand === undefined ? '' : `; slope ${signed(perThousand)} µs per round trip per 1,000 idle descriptors`) +
        `${trend}.`,
    );
    if (perThousand !== undefined) slopes.push({ row: points[0]!.row, perThousand, changed: points.length > 1 && differs(to.cpu, from.cpu) });
  }
  if (slopes.length > 1 && first && last) {
    slopes.sort((a, b) => b.perThousand - a.perThousand);
    // Only a change larger than the runs' spread is ranked: the servers whose cost did not move
    // beyond it are named together, never one of them "the flattest".
    const rising = slopes.filter((x) => x.changed);
    const still = slopes.filter((x) => !x.changed);
    const steep = rising[0];
    const parts = [
      ...(steep ? [`Steepest: ${name(steep.row)} at ${signed(steep.perThousand)} µs per 1,000 idle descriptors`] : []),
      still.length > 0
        ? `no different at ${formatValue(last.params.idle!, 'count')} idle than at ${formatValue(first.params.idle!, 'count')}, within the runs' spread: ${still.map((x) => name(x.row)).join(', ')}`
        : `flattest: ${name(slopes.at(-1)!.row)} at ${signed(slopes.at(-1)!.perThousand)}`,
    ];
    const sentence = parts.join('; ');
    lines.push(
      `${sentence[0]!.toUpperCase()}${sentence.slice(1)}. ` +
        'What the models predict, for reading those slopes: a loop that hands the kernel its whole descriptor list on every wake-up (poll) ' +
        'pays for each idle connection on every busy round trip; one whose interest list lives in the kernel (epoll) pays only for the descriptors that are ready.',
    );
  }
  lines.push(...fairness(scenario, targets, 'round trips'));
  lines.push(saturation(scenario, targets, 'round trip'));
  lines.push(errorsLine(scenario, targets, ['errors'], 'a corrupted, missing or extra byte, or a failed connection'));
  return [...lines, ...notMeasured(scenario, targets)];
}

export function findings(scenario: ScenarioResult, results: BenchResults): string[] {
  const targets = results.targets;
  const settings = results.settings as Record<string, unknown>;
  switch (scenario.id) {
    case 'echo':
      return echoFindings(scenario, targets, settings);
    case 'http':
      return httpFindings(scenario, targets, settings);
    case 'cpu':
      return cpuFindings(scenario, targets);
    case 'churn':
      return churnFindings(scenario, targets);
    case 'capacity':
      return capacityFindings(scenario, targets);
    case 'idle':
      return idleFindings(scenario, targets);
  }
}
