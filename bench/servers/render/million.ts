/**
 * The idle section's two paragraphs from the results file alone: the limits the run raised and
 * the source addresses it used (its facts), and a million connections on paper: each server's
 * per-connection figures at the most idle connections it held, carried on to 1,000,000 on the
 * machine measured (bench/per-connection.ts), saying which resource runs out first. Older files
 * lack the figures: then neither paragraph is written.
 */

import { formatValue, thousands } from '../../kit/format.js';
import { differs, median, summarize } from '../../kit/stats.js';
import { CPU_BUDGET_US, MESSAGES_PER_CLIENT_PER_MINUTE, MILLION, millionOutlook, type MachineLimits, type Need, type Outlook, type ServerFigures } from '../per-connection.js';
import type { BenchResults, CellResult, MetricName, ScenarioResult } from '../results.js';

const fact = (scenario: ScenarioResult, name: string): number | undefined => (typeof scenario.facts[name] === 'number' ? (scenario.facts[name] as number) : undefined);

/** The median of a metric over a cell's runs, or null. */
function figure(result: CellResult | undefined, metric: MetricName): number | null {
  const values = (result?.runs ?? []).map((r) => r.metrics[metric]).filter((v): v is number => typeof v === 'number');
  return values.length ? median(values) : null;
}

/** Each measured server's figures at the most idle connections it held, and where it stopped. */
export function serverFigures(scenario: ScenarioResult, results: BenchResults): ServerFigures[] {
  const cells = [...scenario.cells].sort((a, b) => a.params.idle! - b.params.idle!);
  const out: ServerFigures[] = [];
  for (const target of results.targets) {
    const rows = cells.map((cell) => ({ cell, result: scenario.results.find((r) => r.target === target.id && r.cell === cell.key) }));
    if (rows.every((r) => !r.result)) continue;
    const held = rows.filter((r) => r.result?.status === 'ok' && r.cell.params.idle! > 0 && figure(r.result, 'kernelPerConnection') !== null).at(-1);
    const zero = rows.find((r) => r.cell.params.idle === 0 && r.result?.status === 'ok');
    const stop = rows.find((r) => r.result && r.result.status !== 'ok');
    // CPU per busy round trip grows with the idle connections only where the two levels' runs do
    // not overlap: carried on to a million, a difference within the noise would be a thousandfold noise.
    const cpu = (row: typeof zero) => summarize((row?.result?.runs ?? []).map((r) => r.metrics.cpuUsPerUnit));
    const [atZero, atHeld] = [cpu(zero), cpu(held)];
    const grows = atZero !== undefined && atHeld !== undefined && differs(atZero, atHeld);
    out.push({
      label: target.label,
      held: held?.cell.params.idle ?? 0,
      rssPerConnection: figure(held?.result, 'rssPerConnection'),
      kernelPerConnection: figure(held?.result, 'kernelPerConnection'),
      conntrackPerConnection: figure(held?.result, 'conntrackPerConnection'),
      cpuUsAtZero: atZero?.median ?? null,
      cpuUsAtHeld: grows ? atHeld!.median : (atZero?.median ?? null),
      ...(stop ? { stopped: { level: stop.cell.params.idle!, reason: stop.result!.reason ?? stop.result!.status } } : {}),
    });
  }
  return out;
}

const RESOURCE: Record<Need['resource'], string> = {
  memory: 'memory',
  descriptors: 'descriptors',
  conntrack: 'conntrack entries',
  cpu: 'CPU on wake-ups',
};

function amount(need: Need): string {
  switch (need.resource) {
    case 'memory':
      return `${formatValue(need.need, 'bytes')} of ${formatValue(need.limit, 'bytes')}`;
    case 'cpu':
      return `${formatValue(need.need, 'cpuUs')} CPU µs added to each busy round trip, of ${formatValue(need.limit, 'cpuUs')}`;
    default:
      return `${thousands(need.need)} of ${thousands(need.limit)}`;
  }
}

/**
 * The outlooks in a few sentences: what a million would take in memory, server by server; then
 * the servers grouped by what runs out first (or, where nothing does, what is tightest).
 */
function sentences(outlooks: readonly Outlook[]): string[] {
  const out: string[] = [];
  const memory = outlooks.flatMap((o) => {
    const need = o.needs.find((n) => n.resource === 'memory');
    return need ? [`${o.label} ${formatValue(need.need, 'bytes')} (${formatValue(100 * need.share, 'pct')})`] : [];
  });
  const total = outlooks.flatMap((o) => o.needs).find((n) => n.resource === 'memory')?.limit;
  if (memory.length && total !== undefined) out.push(`In memory a million would take, of ${formatValue(total, 'bytes')}: ${memory.join(', ')}.`);
  const groups = new Map<string, string[]>();
  for (const o of outlooks) {
    const first = o.needs[0];
    if (!first) continue;
    // Servers that share a first resource and a limit read as one group; their own figure where it differs.
    const same = first.resource === 'descriptors' || first.resource === 'conntrack';
    const key = `${first.share >= 1 ? 'out' : 'fits'}|${first.resource}|${same ? amount(first) : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), same ? o.label : `${o.label} (${amount(first)})`]);
  }
  for (const [key, labels] of groups) {
    const [kind, resource, shared] = key.split('|') as [string, Need['resource'], string];
    const what = `${RESOURCE[resource]}${shared ? ` (${shared})` : ''}`;
    out.push(kind === 'out' ? `Runs out of ${what} first: ${labels.join(', ')}.` : `Nothing runs out, tightest on ${what}: ${labels.join(', ')}.`);
  }
  return out;
}

/** The lines the idle section adds after its findings. */
export function idleParagraphs(scenario: ScenarioResult, results: BenchResults): string[] {
  const out: string[] = [];
  const before = fact(scenario, 'fdLimitBefore');
  const after = fact(scenario, 'fdLimit');
  const nrOpen = fact(scenario, 'nrOpen');
  const sources = Math.max(0, ...scenario.results.flatMap((r) => r.runs.map((run) => run.metrics.sources ?? 0)));
  const perSource = fact(scenario, 'portsPerSource');
  if (after !== undefined && nrOpen !== undefined) {
    const refused = typeof scenario.facts.fdLimitRefused === 'string' ? ` (prlimit could not raise it: ${scenario.facts.fdLimitRefused})` : '';
    const raised = before !== undefined && before !== after ? `raised with prlimit from ${thousands(before)} to ${thousands(after)} for each server's levels, then put back` : `${thousands(after)}, not raised${refused}`;
    const from = sources === 1 ? '127.0.0.2' : `up to ${sources} loopback source addresses (127.0.0.2 to 127.0.0.${1 + sources})`;
    const spread = sources > 0 && perSource !== undefined ? ` Idle connections came from ${from}, at most ${thousands(perSource)} each of the ephemeral port range ${scenario.facts.portRange}.` : '';
    out.push(`Open-file limit of the harness, the servers and the load generator: ${raised} (fs.nr_open ${thousands(nrOpen)}).${spread}`, '');
  }

  const machine: MachineLimits = {
    ...(fact(scenario, 'memTotalBytes') !== undefined ? { memTotalBytes: fact(scenario, 'memTotalBytes') } : {}),
    ...(nrOpen !== undefined ? { nrOpen } : {}),
    ...(fact(scenario, 'fileMax') !== undefined ? { fileMax: fact(scenario, 'fileMax') } : {}),
    ...(fact(scenario, 'conntrackMax') !== undefined ? { conntrackMax: fact(scenario, 'conntrackMax') } : {}),
  };
  const servers = serverFigures(scenario, results);
  const measured = servers.filter((s) => s.held > 0);
  if (measured.length === 0) return out;
  const limits = [
    machine.memTotalBytes !== undefined ? `${formatValue(machine.memTotalBytes, 'bytes')} of memory` : undefined,
    machine.nrOpen !== undefined ? `fs.nr_open ${thousands(machine.nrOpen)}` : undefined,
    machine.fileMax !== undefined ? `fs.file-max ${thousands(machine.fileMax)}` : undefined,
    machine.conntrackMax !== undefined ? `nf_conntrack_max ${thousands(machine.conntrackMax)}` : undefined,
  ].filter(Boolean);
  // Servers that stopped at the same level for the same reason share one sentence.
  const byStop = new Map<string, string[]>();
  for (const s of servers.filter((each) => each.stopped)) {
    // The reason without its closing explanation of the model's limit: the tables above give it.
    const key = `${thousands(s.stopped!.level)}: ${s.stopped!.reason.replace(/ \((?:[^()]|\([^()]*\))*\)$/, '')}`;
    byStop.set(key, [...(byStop.get(key) ?? []), s.label]);
  }
  const stopped = [...byStop].map(([stop, labels]) => `${labels.join(', ')} stopped at ${stop}.`);
  out.push(
    '### A million connections, on paper',
    '',
    [
      `Carried on linearly to ${thousands(MILLION)} connections on this machine (${limits.join(', ')}) from the most idle connections each server held: ` +
        "its memory per connection (RSS growth) plus the kernel's (slab and socket buffers, both ends of each loopback connection), " +
        'one descriptor per connection in its process (two on the machine), the conntrack entries measured per connection, ' +
        "and what the idle connections add to the server's CPU per busy round trip (its growth from 0 idle, none where the two levels' runs overlap) " +
        `against ${MESSAGES_PER_CLIENT_PER_MINUTE} message per client a minute, at most ${formatValue(CPU_BUDGET_US, 'cpuUs')} µs of one core per round trip.`,
      ...sentences(measured.map((s) => millionOutlook(s, machine))),
      ...stopped,
    ].join(' '),
    '',
  );
  return out;
}
