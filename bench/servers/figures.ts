/**
 * The figures READMEs quote from the benchmark report, computed from results/bench.json alone and
 * formatted as the report formats them (kit/format.ts): the median of a cell's runs.
 * TARGET is a server's id as the results file lists it (a lab id, or c-epoll).
 *
 *   bench/section/SCENARIO             link to the scenario's section of results/bench.md
 *   bench/echo/cell                    the raw-echo cell quoted below: the most connections, smallest message
 *   bench/echo/cpu/TARGET              its server CPU per round trip there: "8.7 CPU µs per round trip"
 *   bench/cpu/work                     the CPU-bound scenario's work per request: "1,000 µs"
 *   bench/cpu/rate/TARGET              "978 req/s (0.98× one core's ceiling, 1.01 cores busy)"
 *   bench/idle/cpu/TARGET              server CPU per busy round trip at the fewest and the most idle
 *                                      connections: "4.0 CPU µs per busy round trip beside 0 idle connections, 290 beside 10,000"
 *   bench/churn/rate/TARGET            connections turned over: "11,552/s"
 *   bench/churn/first-echo/TARGET      median connect-to-first-echo: "329 µs"
 *   bench/capacity/held/TARGET         "held 10,000 connections, every one echoing, at 7.3 KiB of memory per connection"
 *   bench/capacity/limit/TARGET        (a level it could not hold) "at 1,000 connections, 100 of 1000 echoed; …"
 */

import { formatBytes } from '../../shared/log.js';
import { sectionLink, type Figures } from '../readme-figures.js';
import { summarize, type Summary } from '../kit/stats.js';
import { sectionSpec } from './render/columns.js';
import { formatRatio, formatValue } from '../kit/format.js';
import type { BenchResults, CellResult, CellSpec, MetricName, ScenarioId, ScenarioResult } from './results.js';

export function figures(results: BenchResults): Figures {
  const out: Record<string, string> = {};
  results.scenarios.forEach((scenario, index) => {
    // The heading the report gives the section (render/report.ts); the test checks the report has it.
    out[`bench/section/${scenario.id}`] = sectionLink('bench', `${index + 1}. ${sectionSpec(scenario.id).heading}`);
  });
  const ids = results.targets.map((t) => t.id);
  Object.assign(out, echo(scenarioOf(results, 'echo'), ids), idle(scenarioOf(results, 'idle'), ids), cpu(scenarioOf(results, 'cpu'), ids));
  Object.assign(out, churn(scenarioOf(results, 'churn'), ids), capacity(scenarioOf(results, 'capacity'), ids));
  return out;
}

const scenarioOf = (results: BenchResults, id: ScenarioId) => results.scenarios.find((s) => s.id === id);

/** A target's measured result in a cell, or undefined. */
function measured(scenario: ScenarioResult, cell: CellSpec, target: string): CellResult | undefined {
  return scenario.results.find((r) => r.target === target && r.cell === cell.key && r.status === 'ok' && r.runs.length > 0);
}

function metric(result: CellResult | undefined, name: MetricName): Summary | undefined {
  return result && summarize(result.runs.map((r) => r.metrics[name]));
}

/** Puts `text(value)` under `name` for every target whose `pick` has a value. */
function perTarget<T>(out: Record<string, string>, name: string, targets: readonly string[], pick: (target: string) => T | undefined, text: (value: T) => string): void {
  for (const target of targets) {
    const value = pick(target);
    if (value !== undefined) out[`${name}/${target}`] = text(value);
  }
}

function echo(scenario: ScenarioResult | undefined, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!scenario) return out;
  // The cell the report's reference comparison uses: the last one with the smallest message.
  const smallest = Math.min(...scenario.cells.map((c) => c.params.messageBytes ?? Infinity));
  const cell = scenario.cells.filter((c) => c.params.messageBytes === smallest).at(-1);
  if (!cell) return out;
  out['bench/echo/cell'] = cell.title;
  perTarget(out, 'bench/echo/cpu', targets, (t) => metric(measured(scenario, cell, t), 'cpuUsPerUnit'), (s) => `${formatValue(s.median, 'cpuUs')} CPU µs per round trip`);
  return out;
}

function idle(scenario: ScenarioResult | undefined, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!scenario || scenario.cells.length < 2) return out;
  // The most idle connections any server held: a level the machine did not allow has no figures.
  const held = (cell: CellSpec) => scenario.results.some((r) => r.cell === cell.key && r.status === 'ok');
  const cells = [...scenario.cells].sort((a, b) => a.params.idle! - b.params.idle!).filter(held);
  if (cells.length < 2) return out;
  const [fewest, most] = [cells[0]!, cells.at(-1)!];
  const count = (cell: CellSpec) => formatValue(cell.params.idle!, 'count');
  perTarget(
    out,
    'bench/idle/cpu',
    targets,
    (t) => {
      const [from, to] = [metric(measured(scenario, fewest, t), 'cpuUsPerUnit'), metric(measured(scenario, most, t), 'cpuUsPerUnit')];
      return from && to ? { from, to } : undefined;
    },
    ({ from, to }) =>
      `${formatValue(from.median, 'cpuUs')} CPU µs per busy round trip beside ${count(fewest)} idle connections, ${formatValue(to.median, 'cpuUs')} beside ${count(most)}`,
  );
  return out;
}

function cpu(scenario: ScenarioResult | undefined, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const cell = scenario?.cells[0];
  const facts = scenario?.facts as { workUs?: number; oneCoreCeiling?: number } | undefined;
  if (!scenario || !cell || facts?.workUs === undefined || facts.oneCoreCeiling === undefined) return out;
  const ceiling = facts.oneCoreCeiling;
  out['bench/cpu/work'] = `${formatValue(facts.workUs, 'count')} µs`;
  perTarget(out, 'bench/cpu/rate', targets, (t) => measured(scenario, cell, t), (result) => {
    const rate = metric(result, 'requestsPerSec');
    const cores = metric(result, 'serverCores');
    if (!rate) return '–';
    return `${formatValue(rate.median, 'rate')} req/s (${formatRatio(rate.median / ceiling)} one core's ceiling${cores ? `, ${formatValue(cores.median, 'cores')} cores busy` : ''})`;
  });
  return out;
}

function churn(scenario: ScenarioResult | undefined, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const cell = scenario?.cells[0];
  if (!scenario || !cell) return out;
  perTarget(out, 'bench/churn/rate', targets, (t) => metric(measured(scenario, cell, t), 'connectionsPerSec'), (s) => `${formatValue(s.median, 'rate')}/s`);
  perTarget(out, 'bench/churn/first-echo', targets, (t) => metric(measured(scenario, cell, t), 'firstEchoP50Us'), (s) => `${formatValue(s.median, 'us')} µs`);
  return out;
}

function capacity(scenario: ScenarioResult | undefined, targets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!scenario) return out;
  for (const target of targets) {
    const levels = scenario.cells.map((cell) => ({ cell, result: scenario.results.find((r) => r.target === target && r.cell === cell.key) }));
    if (levels.every((l) => !l.result || ['unavailable', 'not-applicable', 'failed'].includes(l.result.status))) continue;
    const held = levels.filter((l) => l.result?.status === 'ok').at(-1);
    const perConnection = held && metric(held.result, 'bytesPerConnection');
    out[`bench/capacity/held/${target}`] = held
      ? `held ${held.cell.title}, every one echoing${perConnection ? `, at ${formatBytes(perConnection.median)} of memory per connection` : ''}`
      : 'held none of the levels';
    const cannot = levels.find((l) => l.result?.status === 'cannot');
    // The reason as measured ("100 of 1000 echoed; 900 were closed or reset by the server"),
    // without the explanation from the registry the report adds in parentheses.
    if (cannot?.result?.reason) out[`bench/capacity/limit/${target}`] = `at ${cannot.cell.title}, ${cannot.result.reason.replace(/ \([^]*\)$/, '')}`;
  }
  return out;
}
