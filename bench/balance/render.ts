/**
 * Renders the balance report from its JSON alone: per step a table, bars, and what the numbers
 * say. Every figure in the prose is taken from the results; the kernel mechanisms that explain
 * them are fixed text, and each claim that depends on a number is said only as the numbers allow.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check, compare } from '../kit/findings.js';
import type { LabDescription } from '../kit/labs.js';
import { thousands } from '../kit/format.js';
import { nearestRank } from '../kit/stats.js';
import { once, type Table } from '../kit/table.js';
import type { Arrival, BalanceReport, BalanceResults, ScalingRun, SpreadRun, StallRun } from './results.js';

/** The Summary: a row per policy; the busiest loop's share, the probes a stall slowed, the scaling. */
export function renderBalanceReport(report: BalanceReport): Page {
  const { results } = report;
  const workers = Math.max(...results.spread.map((r) => r.workers));
  const burst = (policy: string) =>
    results.spread.filter((r) => r.policy === policy && r.workers === workers).reduce<SpreadRun | undefined>((a, b) => (!a || b.arrival.connections > a.arrival.connections ? b : a), undefined);
  const slowMs = results.stall.settings.slowFactor * (results.stall.settings.workUs / 1000);
  const { runs, settings } = results.scaling;
  const base = runs.find((r) => r.policy === undefined && r.cores === 1);
  const full = (policy: string | undefined, lab = results.lab.id) => runs.find((r) => r.policy === policy && r.lab === lab && r.cores === settings.cores);
  const rowOf = (label: string, policy: string | undefined, lab?: string) => {
    const spread = policy ? burst(policy) : undefined;
    const stall = policy ? results.stall.runs.find((r) => r.policy === policy) : undefined;
    const scaling = policy ? full(policy) : runs.find((r) => r.lab === lab && r.policy === undefined && (lab !== base?.lab || r.cores === 1));
    return {
      label,
      cells: [
        spread ? { summary: once(100 * spreadOf(spread.perWorker).maxShare) } : undefined,
        stall ? { summary: once(stallSummary(stall, slowMs).slow) } : undefined,
        scaling ? { summary: once(scaling.requestsPerSec) } : undefined,
        scaling && base ? { summary: once(scaling.requestsPerSec / base.requestsPerSec) } : undefined,
      ],
    };
  };
  const others = runs.filter((r) => r.policy === undefined && r.lab !== results.lab.id);
  const table: Table = {
    rowHeader: 'policy / server',
    columns: [
      { header: `busiest loop's share, ${workers} workers`, unit: 'pct', explain: `share of the largest burst's connections the busiest loop took; an even share is ${Math.round(100 / workers)}%` },
      { header: `probes slowed by a stall (> ${ms(slowMs)} ms)`, unit: 'count', explain: `of ${results.stall.runs[0]?.probes.length ?? 0} new clients while one loop was busy` },
      { header: `CPU-bound req/s, ${settings.cores} cores`, unit: 'rate', better: 'higher', explain: `${settings.workUs} µs of CPU per request, one run each (nothing is ranked)` },
      { header: `× ${base?.label ?? 'one loop'}`, unit: 'ratio' },
    ],
    rows: [...results.policies.map((policy) => rowOf(`${results.lab.label} ${policy}`, policy)), ...others.map((r) => rowOf(r.label, undefined, r.lab))],
  };
  const figure = (i: number) => (table.rows[i]?.cells[2]?.summary ? { row: table.rows[i]!.label, summary: table.rows[i]!.cells[2]!.summary! } : undefined);
  const baseRow = table.rows.findIndex((r) => r.label === base?.label);
  return {
    intro:
      `${results.lab.label}'s \`--balance\` policies (${results.policies.join(', ')}): how connections spread over the loops, what a stalled loop does to new clients, ` +
      'and CPU-bound requests per second beside one event loop and the worker pool. Each run starts a fresh server; counts per worker come from its shutdown summary.',
    summary: table,
    chart: barChart('summary', `CPU-bound requests/s on ${settings.cores} cores`, 'requests/s', table.rows.map((r) => ({ label: r.label, value: r.cells[2]?.summary?.median }))),
    findings: [
      check(`the connections split evenly (within 1) in every spread run`, results.policies, (p) => p, (p) => results.spread.filter((r) => r.policy === p).every((r) => spreadOf(r.perWorker).max - spreadOf(r.perWorker).min <= 1)),
      check('no new client slowed while one loop was stalled', results.stall.runs, (r) => r.policy, (r) => stallSummary(r, slowMs).slow === 0),
      ...results.policies.slice(0, 3).map((_, i) => compare(`CPU-bound requests/s on ${settings.cores} cores against one loop`, 'rate', figure(i), figure(baseRow))),
    ].slice(0, 5),
    detail: renderBalance(results, report.labs),
  };
}

// --- Numbers ----------------------------------------------------------------------------------

export interface Spread {
  readonly total: number;
  readonly min: number;
  readonly max: number;
  /** Population standard deviation of the per-worker counts. */
  readonly sd: number;
  /** The busiest loop's share, as a fraction of the total. */
  readonly maxShare: number;
}

export function spreadOf(counts: readonly number[]): Spread {
  const total = counts.reduce((a, b) => a + b, 0);
  const mean = total / counts.length;
  const sd = Math.sqrt(counts.reduce((s, c) => s + (c - mean) ** 2, 0) / counts.length);
  const max = Math.max(...counts);
  return { total, min: Math.min(...counts), max, sd, maxShare: total === 0 ? 0 : max / total };
}

const int = thousands;
const pct = (fraction: number) => `${Math.round(fraction * 100)}%`;
/** A count that may be fractional (an expected share): whole numbers without decimals. */
const count = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const arrivalText = (a: Arrival) => (a.overMs > 0 ? `${int(a.connections)} over ${a.overMs / 1000} s` : `${int(a.connections)} at once`);

// --- Step 1: spread ---------------------------------------------------------------------------

function spreadTable(runs: readonly SpreadRun[], workers: number): string[] {
  const columns = Array.from({ length: workers }, (_, i) => `worker ${i}`);
  const lines = [`| policy | arrival | ${columns.join(' | ')} | min | max | std dev | busiest loop's share | failed |`, `|---|---|${'---:|'.repeat(workers)}---:|---:|---:|---:|---:|`];
  for (const run of runs) {
    const s = spreadOf(run.perWorker);
    lines.push(`| ${run.policy} | ${arrivalText(run.arrival)} | ${run.perWorker.map(int).join(' | ')} | ${int(s.min)} | ${int(s.max)} | ${s.sd.toFixed(1)} | ${pct(s.maxShare)} | ${run.failed} |`);
  }
  return lines;
}

/** The sentences of step 1, from the runs. */
export function spreadProse(runs: readonly SpreadRun[]): string[] {
  const out: string[] = [];
  const byPolicy = new Map<string, SpreadRun[]>();
  for (const run of runs) byPolicy.set(run.policy, [...(byPolicy.get(run.policy) ?? []), run]);
  for (const [policy, own] of byPolicy) {
    const widest = own.reduce((a, b) => (spreadOf(b.perWorker).maxShare - 1 / b.workers > spreadOf(a.perWorker).maxShare - 1 / a.workers ? b : a));
    const s = spreadOf(widest.perWorker);
    const exact = own.every((r) => spreadOf(r.perWorker).max - spreadOf(r.perWorker).min <= 1);
    out.push(
      `**${policy}.** ` +
        (exact
          ? `In every run the loops' counts differed by at most 1: an even split. `
          : `Its most uneven run (${widest.workers} workers, ${arrivalText(widest.arrival)}) gave the busiest loop ${int(s.max)} of ${int(s.total)} connections (${pct(s.maxShare)}, where an even share is ${pct(1 / widest.workers)}) and the least busy ${int(s.min)}. `) +
        POLICY_MECHANISM[policy]?.spread,
    );
  }
  return out;
}

// --- Step 2: a stalled worker -----------------------------------------------------------------

export interface StallSummary {
  readonly answered: number;
  readonly probes: number;
  readonly onStalled: number;
  /** Probes whose worker no log line named. */
  readonly unknown: number;
  readonly slow: number;
  readonly p50: number;
  readonly p90: number;
  readonly max: number;
}

export function stallSummary(run: StallRun, slowMs: number): StallSummary {
  const times = run.probes.flatMap((p) => (p.responseMs === null ? [] : [p.responseMs]));
  return {
    answered: times.length,
    probes: run.probes.length,
    onStalled: run.probes.filter((p) => p.worker !== null && p.worker === run.stalledWorker).length,
    unknown: run.probes.filter((p) => p.worker === null).length,
    slow: times.filter((t) => t > slowMs).length,
    p50: times.length ? nearestRank(times, 0.5) : Number.NaN,
    p90: times.length ? nearestRank(times, 0.9) : Number.NaN,
    max: times.length ? Math.max(...times) : Number.NaN,
  };
}

function stallSection(results: BalanceResults): string[] {
  const { settings, runs } = results.stall;
  const workMs = settings.workUs / 1000;
  const slowMs = settings.slowFactor * workMs;
  const lines = [
    `Lab 06 with ${settings.workers} workers, \`--protocol http --work-us ${settings.workUs}\`: every request costs ${ms(workMs)} ms of CPU on the loop that answers it. ` +
      `A staller connects, and once its loop is known (its log line) sends ${settings.requests} requests in one write: that loop is busy for about ${((settings.requests * workMs) / 1000).toFixed(1)} s. ` +
      `Meanwhile a probe starts every ${settings.probeIntervalMs} ms (the free loop stays about ${pct(workMs / settings.probeIntervalMs)} busy), sends one request and times the response from its connect. ` +
      `Slow means more than ${settings.slowFactor} × the work, ${ms(slowMs)} ms. Which worker served each probe comes from the lab's per-connection log lines.`,
    '',
    `| policy | stalled loop | stall (staller's last answer) | probes | to the stalled loop | slow (> ${ms(slowMs)} ms) | p50 ms | p90 ms | max ms |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const run of runs) {
    const s = stallSummary(run, slowMs);
    lines.push(
      `| ${run.policy} | ${run.stalledWorker === null ? '?' : `worker ${run.stalledWorker}`} | ${run.stallMs === null ? '–' : `${(run.stallMs / 1000).toFixed(1)} s`} | ` +
        `${s.answered === s.probes ? s.probes : `${s.probes} (${s.probes - s.answered} unanswered)`} | ` +
        `${s.onStalled}${s.unknown ? ` (+${s.unknown} unknown)` : ''} | ${s.slow} | ${Number.isNaN(s.p50) ? '–' : ms(s.p50)} | ${Number.isNaN(s.p90) ? '–' : ms(s.p90)} | ${Number.isNaN(s.max) ? '–' : ms(s.max)} |`,
    );
  }
  lines.push('', '<details><summary>Every probe: when it started, which worker served it, its response time</summary>', '');
  for (const run of runs) {
    lines.push(`${run.policy} (stalled: worker ${run.stalledWorker ?? '?'}):`, '', '```');
    for (const probe of run.probes) {
      const mark = probe.worker !== null && probe.worker === run.stalledWorker ? '  ← the stalled loop' : '';
      lines.push(`${String(probe.sentAtMs).padStart(6)} ms  worker ${probe.worker ?? '?'}  ${probe.responseMs === null ? 'no response' : `${ms(probe.responseMs)} ms`}${mark}`);
    }
    lines.push('```', '');
  }
  lines.push('</details>', '', ...stallProse(results).flatMap((p) => [p, '']));
  return lines;
}

export function stallProse(results: BalanceResults): string[] {
  const { settings, runs } = results.stall;
  const slowMs = settings.slowFactor * (settings.workUs / 1000);
  const out: string[] = [];
  for (const run of runs) {
    const s = stallSummary(run, slowMs);
    out.push(
      `**${run.policy}.** ${s.onStalled} of ${s.probes} probes went to the stalled loop (worker ${run.stalledWorker ?? '?'}; 1 in ${settings.workers} would be ${count(s.probes / settings.workers)}); ${s.slow} waited more than ${ms(slowMs)} ms, ` +
        `and the slowest took ${Number.isNaN(s.max) ? '–' : ms(s.max)} ms (median ${Number.isNaN(s.p50) ? '–' : ms(s.p50)} ms). ${POLICY_MECHANISM[run.policy]?.stall ?? ''}`.trimEnd(),
    );
  }
  // The work is calibrated once at start-up: on a machine busy with other programs it takes longer.
  const planned = (settings.requests * settings.workUs) / 1e6;
  const longest = Math.max(...runs.map((r) => r.stallMs ?? 0)) / 1000;
  if (longest > 1.25 * planned) {
    out.push(
      `**The stall ran long.** ${settings.requests} requests of ${ms(settings.workUs / 1000)} ms should keep a loop busy for ${planned.toFixed(1)} s; the longest stall here lasted ${longest.toFixed(1)} s. ` +
        'The work is a number of loop iterations calibrated when the lab starts, so when other programs share the cores each request takes longer than its nominal time, the stall and every probe with it.',
    );
  }
  // The expectation, tested: the blind policies keep sending new clients to the stalled loop; shared does not.
  const held: string[] = [];
  const failed: string[] = [];
  for (const run of runs) {
    const s = stallSummary(run, slowMs);
    const expected = run.policy === 'shared' ? s.onStalled === 0 : s.onStalled > 0;
    (expected ? held : failed).push(run.policy);
  }
  out.push(
    `**The expectation** was that handoff and reuseport keep sending about 1 in ${settings.workers} new clients to the stalled loop (they do not know it is busy) and shared sends none ` +
      `(a loop that is computing is not waiting in \`epoll_wait\`, so only the free loop is woken to accept). Counted as held when shared sent no probe to the stalled loop and the others sent at least one: ` +
      `${held.length ? `it held for ${held.join(', ')}` : 'it held for none'}${failed.length ? `, and not for ${failed.join(', ')}` : ''}.`,
  );
  return out;
}

// --- Step 3: scaling --------------------------------------------------------------------------

function scalingSection(results: BalanceResults): string[] {
  const { settings, runs } = results.scaling;
  const base = runs.find((r) => r.policy === undefined && r.cores === 1);
  const lines = [
    `CPU-bound HTTP: \`--protocol http --work-us ${settings.workUs}\`, autocannon with ${settings.connections} connections, no pipelining, ${settings.durationMs / 1000} s measured after a warm-up. ` +
      `One core doing nothing but the work answers at most ${int(1e6 / Math.max(1, settings.workUs))} requests/s. Nothing is pinned: the server needs every core, and autocannon runs in the harness ` +
      `on the same ${settings.cores} cores, so the load generator takes CPU the server could have used (its share is in the table). ` +
      '"Server CPU" is the server process\'s CPU time over the window divided by its length: 1.00 is one core busy throughout.',
    '',
    `| server | policy | workers / threads | requests/s | × ${base?.label ?? 'one loop'} | server CPU (cores) | autocannon (% of a core) | requests per CPU-second | round trips per worker | connections per worker | errors |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|',
  ];
  for (const run of runs) {
    lines.push(
      `| ${run.label} | ${run.policy ?? '–'} | ${run.cores} | ${int(run.requestsPerSec)} | ${base ? (run.requestsPerSec / base.requestsPerSec).toFixed(2) : '–'} | ` +
        `${run.serverCores === null ? '–' : run.serverCores.toFixed(2)} | ${run.loadGenCorePct} | ${perCpuSecond(run)} | ${run.perWorkerRoundTrips?.map(int).join(' / ') ?? '–'} | ` +
        `${run.perWorkerConnections?.join(' / ') ?? '–'} | ${run.errors} |`,
    );
  }
  lines.push('', ...scalingProse(results).flatMap((p) => [p, '']));
  return lines;
}

/** Requests per second of server CPU: what the server did with the CPU it got, however much that was. */
function perCpuSecond(run: ScalingRun): string {
  return run.serverCores === null || run.serverCores === 0 ? '–' : int(run.requestsPerSec / run.serverCores);
}

/**
 * A run whose server used less than this share of a core per thread that had work was short of
 * CPU (other programs, the load generator): its requests/s measure the machine, not the model.
 */
const WHOLE_CORE = 0.9;

/** The share of cores × the one-loop lab that lab 06 should reach on every core. */
export const SCALING_GOAL = 0.9;

export function scalingProse(results: BalanceResults): string[] {
  const { settings, runs } = results.scaling;
  const cores = settings.cores;
  const base = runs.find((r) => r.policy === undefined && r.cores === 1);
  const pool = runs.find((r) => r.policy === undefined && r.cores !== 1);
  if (!base) return [];
  const goal = SCALING_GOAL * cores;
  const out: string[] = [];
  const full = runs.filter((r): r is ScalingRun & { policy: string } => r.policy !== undefined && r.cores === cores);
  const sentences = full.map((run) => {
    const ratio = run.requestsPerSec / base.requestsPerSec;
    return `${run.policy} ${int(run.requestsPerSec)} requests/s, ${ratio.toFixed(2)}× (${ratio >= goal ? 'meets the goal' : 'short of the goal'})`;
  });
  out.push(
    `**${results.lab.label} against ${base.label}.** ${base.label} answered ${int(base.requestsPerSec)} requests/s on its one loop. With ${cores} workers the ideal is ${cores}× that and the goal ${goal.toFixed(1)}×: ` +
      `${sentences.join('; ')}.` +
      (pool ? ` ${pool.label} with ${pool.cores} threads: ${int(pool.requestsPerSec)} requests/s, ${(pool.requestsPerSec / base.requestsPerSec).toFixed(2)}×, with its main thread doing every socket's I/O and a copy of each request to a thread and back.` : '') +
      // One run each: nothing measured how much a run varies, so no difference between them is ranked.
      (full.length > 1
        ? ` Each is a single run, with no repeat to measure its spread, so the policies are not ranked against one another ` +
          `(${int(Math.min(...full.map((r) => r.requestsPerSec)))} to ${int(Math.max(...full.map((r) => r.requestsPerSec)))} requests/s): only the goal is a verdict.`
        : ''),
  );
  const busiest = full.reduce<(ScalingRun & { policy: string }) | undefined>((a, b) => (a === undefined || b.requestsPerSec > a.requestsPerSec ? b : a), undefined);
  if (busiest && busiest.serverCores !== null) {
    out.push(
      `**Where the CPU went.** In the ${busiest.policy} run with ${cores} workers the server kept ${busiest.serverCores.toFixed(2)} of the ${cores} cores busy and autocannon ${busiest.loadGenCorePct}% of one: ` +
        `the load generator's share is CPU the loops could not have, so on this machine ${cores}× ${base.label} is out of reach by about that much. ` +
        `${base.label} used ${base.serverCores === null ? '–' : base.serverCores.toFixed(2)} cores: one loop is one thread, whatever the machine has.`,
    );
  }
  // A run whose server got less CPU than its threads could use was short of CPU, not of scaling
  // (a loop left without connections has no work to use a core with: that case is the next one).
  const idleLoop = (r: ScalingRun) => r.perWorkerConnections !== undefined && spreadOf(r.perWorkerConnections).min === 0;
  const starved = [base, ...full].filter((r) => r.serverCores !== null && r.serverCores < WHOLE_CORE * r.cores && !idleLoop(r));
  if (starved.length) {
    const name = (r: ScalingRun) => (r.policy ? `${r.label} (${r.policy}, ${r.cores} workers)` : r.label);
    out.push(
      `**A caution.** ${starved.map((r) => `${name(r)} got ${r.serverCores!.toFixed(2)} cores for its ${r.cores} busy thread${r.cores === 1 ? '' : 's'}`).join('; ')}: ` +
        'other programs on the machine (and autocannon) took the rest, so ratios involving these runs say as much about the machine as about the model. ' +
        `Requests per CPU-second depend much less on how much CPU a run got: ${[base, ...full].map((r) => `${r.policy ?? r.label} ${perCpuSecond(r)}`).join(', ')}. Measure again on a quiet machine to compare requests/s.`,
    );
  }
  const lopsided = full.filter(idleLoop);
  if (lopsided.length) {
    out.push(
      `**A loop left without connections.** In ${lopsided.map((r) => r.policy).join(', ')} with ${cores} workers, a loop got none of autocannon's ${settings.connections} connections ` +
        `(${lopsided.map((r) => r.perWorkerConnections!.join(' / ')).join('; ')}), so it did no work at all: a policy that spreads connections, not requests, decides the throughput of long-lived clients once, when they connect.`,
    );
  }
  return out;
}

// --- The mechanisms -----------------------------------------------------------------------------

/** What each policy's kernel mechanism predicts, in the words the report uses for it. */
const POLICY_MECHANISM: Record<string, { spread: string; stall: string }> = {
  handoff: {
    spread: 'The acceptor deals connections out round-robin, so the split is even by construction, whatever the kernel does.',
    stall: 'The acceptor deals in turn and does not know that a loop is busy: the probes dealt to the stalled loop wait in its message queue until the stall ends.',
  },
  shared: {
    spread:
      'There is one accept queue, and every loop waits for it in its own `epoll_wait`. libuv registers the socket without `EPOLLEXCLUSIVE`, so a connection wakes every waiting loop and the first to call `accept4` wins (the others get `EAGAIN`); who is first is up to the scheduler. ' +
      'And a loop that wins keeps calling `accept4` until `EAGAIN` (libuv drains the queue in one go), so under a burst the loop that is already awake takes whatever has queued meanwhile, again and again.',
    stall: 'A loop that is computing is not in `epoll_wait`, so only the free loop is woken for a new connection and accepts it.',
  },
  reuseport: {
    spread:
      "Each loop has its own socket and accept queue; the kernel picks one per SYN by a hash of the connection's addresses and ports, so the split is even only on average (on loopback only the client's port differs between two connections).",
    stall: "The hash is blind to load: a connection hashed to the stalled loop's socket waits in that socket's accept queue, however idle the other loop is.",
  },
};

function mechanisms(): string[] {
  return [
    '## The kernel mechanisms',
    '',
    '- **One accept queue, many waiters (shared).** Every loop holds a `dup` of the one listening socket, so there is one accept queue and each loop\'s epoll instance watches it. ' +
      'Without `EPOLLEXCLUSIVE` (libuv does not set it) a new connection wakes every loop waiting in `epoll_wait`, all call `accept4`, one wins. ' +
      'With `EPOLLEXCLUSIVE` (Linux 4.5, what nginx uses) only one waiter is woken, and the wait queue is LIFO: the worker that most recently went back to waiting is woken first, so at light load one worker takes most connections (Cloudflare, "Why does one NGINX worker take all the load?", 2017).',
    '- **The reuseport hash.** With `SO_REUSEPORT` each loop has a listening socket of its own, each with its own accept queue. The kernel picks the socket for each SYN by a hash of the 4-tuple: no shared lock, even on average, blind to how busy each loop is. ' +
      'The backlog is per socket. When one socket of the group closes, the connections waiting in its queue are reset unless `net.ipv4.tcp_migrate_req = 1` (Linux 5.14) lets the kernel move them to another socket of the group; the lab never closes one socket of the group alone.',
    "- **Handoff.** One thread accepts everything and passes each descriptor to the next loop in turn (Node's `cluster` default on Linux). Even by construction, but it spreads connections, not load, and one thread accepts for all.",
    '',
    '## See it by hand',
    '',
    '```sh',
    'make lab-06 WORKERS=4 BALANCE=shared          # terminal 1: four loops on one shared socket; Ctrl-C prints one line per worker',
    "ss -ltn 'sport = :8080'                       # terminal 2: one LISTEN line; with BALANCE=reuseport, one per worker",
    'for i in $(seq 40); do echo "hello $i" | nc -N 127.0.0.1 8080; done    # terminal 3: each line names its worker',
    '# A stall: every request costs 100 ms; one client pipelines 20 in one write, then time a new client (run it a few times)',
    'make lab-06 WORKERS=2 BALANCE=reuseport PROTOCOL=http WORK_US=100000',
    "(for i in $(seq 20); do printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'; done) | nc -q5 127.0.0.1 8080 >/dev/null &",
    'time curl -s 127.0.0.1:8080/ >/dev/null                  # 0.1 s on the free loop; up to 2 s on the stalled one',
    'sysctl net.ipv4.tcp_migrate_req               # 0: a closed reuseport socket resets its queue; 1: the kernel migrates it',
    '```',
  ];
}

// --- The report -------------------------------------------------------------------------------

export function renderBalance(results: BalanceResults, labs: readonly LabDescription[]): string[] {
  const lab = labs.find((l) => l.id === results.lab.id);
  const workerCounts = [...new Set(results.spread.map((r) => r.workers))].sort((a, b) => a - b);
  const spread: string[] = [];
  for (const workers of workerCounts) {
    const runs = results.spread.filter((r) => r.workers === workers);
    spread.push(`### ${workers} workers`, '', ...spreadTable(runs, workers), '');
  }
  return [
    `Every measurement ran against **${results.lab.label}**${lab ? ` (${lab.model})` : ''}, once per \`--balance\` policy: ${results.policies.join(', ')}. ` +
      'Each run starts a fresh server; counts per worker come from its shutdown summary (`worker K: C connections, R round trips`).',
    '',
    '## 1. Spread: connections per worker',
    '',
    'Each connection connects, echoes one line, and stays open until every connection of the run has echoed: what a loop holds at the end is what it would carry for the rest of a long-lived ' +
      "connection, the case where an uneven split costs something (a short connection that closes at once leaves nothing behind to balance). The burst starts every connection at once; the accept queue is large enough (`--backlog 2048`) that none waits for a SYN retry.",
    '',
    ...spread,
    ...spreadProse(results.spread).flatMap((p) => [p, '']),
    '## 2. A stalled worker',
    '',
    ...stallSection(results),
    '## 3. Scaling: CPU-bound requests per second',
    '',
    ...scalingSection(results),
    ...mechanisms(),
  ];
}
