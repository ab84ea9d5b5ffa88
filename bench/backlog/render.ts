/**
 * results/backlog.json -> results/backlog.md. Rendering reads only the JSON, so an old
 * measurement can be re-rendered at any time; every sentence about a run comes from explain.ts.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check } from '../kit/findings.js';
import { kernelQueueLab } from '../kit/labs.js';
import { once, type Table } from '../kit/table.js';
import { byHand } from './by-hand.js';
import { explainRun, explainSweep } from './explain.js';
import { runFacts } from './facts.js';
import { clientList, describeWaits, PLACE_NAMES, seconds } from './wording.js';
import type { BacklogReport, ClientRecord, RunResult } from './results.js';

/** Width of the bins in the depth-over-time chart and table. */
const BIN_MS = 250;

function summary(report: BacklogReport): Table {
  const s = report.settings;
  const runs = [...report.runs.filter((r) => r.kind === 'model'), ...report.runs.filter((r) => r.kind === 'sweep')];
  return {
    rowHeader: 'lab',
    columns: [
      { header: 'backlog', unit: 'count' },
      { header: 'accept queue while held', unit: 'count', explain: 'deepest accept queue sampled while client 1 held its connection' },
      { header: `clients 2–${s.clients} answered while held`, unit: 'count' },
      { header: 'slowest first echo, ms', unit: 'ms', better: 'lower', explain: `of clients 2–${s.clients}, from the start of connect() (one run each: nothing is ranked)` },
      { header: 'where they waited', unit: 'count' },
      { header: 'ListenOverflows', unit: 'count', explain: "the kernel's count of connections dropped at a full accept queue, during the run" },
    ],
    rows: runs.map((run) => {
      const f = runFacts(run);
      return {
        label: run.kind === 'sweep' ? `${run.lab} (backlog ${run.backlogAsked})` : run.lab,
        starved: f.echoedWhileHeld.length === 0 && f.others.length > 0,
        cells: [
          { summary: once(run.effectiveBacklog) },
          { summary: once(f.maxDepthWhileHeld) },
          { text: `${f.echoedWhileHeld.length} of ${f.others.length}` },
          f.echoAfterStartMs.length ? { summary: once(Math.max(...f.echoAfterStartMs)) } : undefined,
          { text: summarizeWaits(f.others) },
          { summary: once(f.listenOverflows) },
        ],
      };
    }),
  };
}

export function renderReport(report: BacklogReport): Page {
  const models = report.runs.filter((r) => r.kind === 'model');
  const s = report.settings;
  const table = summary(report);
  return {
    intro:
      `Where do clients wait while a server is busy? Client 1 connects and holds its connection for ${seconds(s.holdMs)}; clients 2–${s.clients} arrive meanwhile, ${s.gapMs} ms apart. ` +
      'Every lab got the same arrival, then the lab whose only queue is the kernel\'s ran again at smaller backlogs; `/proc` was sampled throughout to see, per client, where it waited.',
    summary: table,
    chart: barChart('summary', `Slowest first echo of clients 2–${s.clients}, from connect() (ms)`, 'ms', table.rows.map((r) => ({ label: r.label, value: r.cells[3]?.summary?.median, ...(r.starved ? { note: 'none answered while client 1 held' } : {}) }))),
    findings: [
      check('every other client answered while client 1 held its connection', models, (r) => r.lab, (r) => runFacts(r).echoedWhileHeld.length === runFacts(r).others.length),
      check('no client waited in the kernel accept queue', models, (r) => r.lab, (r) => runFacts(r).waitedIn['accept-queue'].length === 0),
      check('no connection dropped at a full accept queue (ListenOverflows +0)', report.runs, (r) => (r.kind === 'sweep' ? `${r.lab} at backlog ${r.backlogAsked}` : r.lab), (r) => runFacts(r).listenOverflows === 0),
    ],
    method: [
      `Every ${s.sampleMs} ms a separate thread read the listening socket and every client's connection from \`/proc/net/tcp\` and the ListenOverflows/ListenDrops counters from \`/proc/net/netstat\`. ` +
        (report.network === 'own network namespace'
          ? 'The experiment ran in a network namespace of its own (`unshare --net`), so those tables and counters saw its sockets only. '
          : "It shared the network namespace with the rest of the machine, so ListenOverflows/ListenDrops may include other programs' drops. ") +
        `The whole measurement took ${seconds(report.wallMs)}.`,
    ],
    detail: detail(report),
  };
}

function detail(report: BacklogReport): string[] {
  const models = report.runs.filter((r) => r.kind === 'model');
  const sweep = report.runs.filter((r) => r.kind === 'sweep');
  const s = report.settings;
  const out: string[] = [];
  out.push('## How to read this report', '');
  out.push(
    '- **Times** are seconds since client 1 started connecting. *connected*: the client\'s handshake completed (its `connect` event). ' +
      '*accepted*: the first sample in which the server process held the connection (its socket had a file, i.e. `accept()` had returned); ' +
      `samples are ${s.sampleMs} ms apart, so this is up to ${s.sampleMs} ms late and can come after the echo, and "–" means no sample fell between accept() and close. ` +
      '*first echo*: the first echoed byte arrived. ' +
      '*closed*: the connection was closed at both ends.',
    '- **Waited where**, decided from what the kernel showed for that connection:',
    `  - *${PLACE_NAMES['syn-retransmit']}*: the handshake took 0.5 s or more; on loopback only a SYN that was dropped and resent takes that long.`,
    `  - *${PLACE_NAMES['final-ack-dropped']}*: the client had connected, yet the server still showed only a SYN_RECV request socket.`,
    `  - *${PLACE_NAMES['accept-queue']}*: the server side was ESTABLISHED with no socket file (inode 0 in \`/proc/net/tcp\`): handshake done, not yet accepted.`,
    `  - *${PLACE_NAMES['user-space']}*: the server held the connection and the echo still came more than ${s.userSpaceWaitMs} ms later.`,
    `  - *nowhere*: none of the above; the echo came within ${s.userSpaceWaitMs} ms of the handshake. ` +
      `A stay in the accept queue or in user space shorter than ${s.userSpaceWaitMs} ms does not count as a wait. ` +
      `A stay in the accept queue is counted up to the first sample that saw the connection accepted, so it can be up to ${s.sampleMs} ms long.`,
    `- **Accept-queue depth** is the listening socket's Recv-Q in \`ss -ltn\` (connections waiting for \`accept()\`); the effective backlog is its Send-Q. ` +
      `ListenOverflows and ListenDrops are the kernel's counters of connections dropped at a full queue ` +
      `(${report.network === 'own network namespace' ? "here the experiment's own network namespace" : 'machine-wide'}), shown as the rise during each run.`,
    '',
  );

  out.push('## The models', '');
  for (const run of models) out.push(...renderRun(run, report, `### ${run.lab}: ${modelOf(run, report)} (backlog ${run.effectiveBacklog})`));

  if (sweep.length > 0) {
    out.push(`## Backlog sweep: the serial lab at backlog ${sweep.map((r) => r.backlogAsked).join(', ')}`, '');
    out.push(
      '| Backlog asked | Effective (Send-Q) | Accept queue max | Clients delayed by SYN retransmit | Their handshake took | SYNs resent at (s after first) | Last first echo | ListenOverflows | ListenDrops |',
      '|---:|---:|---:|---|---|---|---:|---:|---:|',
    );
    for (const run of sweep) {
      const f = runFacts(run);
      const retried = f.waitedIn['syn-retransmit'];
      const lastEcho = Math.max(...run.clients.map((c) => c.firstEchoMs ?? -Infinity));
      out.push(
        `| ${run.backlogAsked} | ${run.effectiveBacklog}${run.effectiveBacklogSource === 'computed' ? ' (computed)' : ''} | ${f.maxDepth} | ` +
          `${retried.length ? clientList(retried) : 'none'} | ${retried.map((c) => seconds((c.connectMs ?? c.startMs) - c.startMs)).join(', ') || '–'} | ` +
          `${retried.map((c) => (c.synRetransmitsS ? c.synRetransmitsS.join(', ') : '?')).join(' · ') || '–'} | ${seconds(Number.isFinite(lastEcho) ? lastEcho : undefined)} | ` +
          `+${f.listenOverflows} | +${f.listenDrops} |`,
      );
    }
    out.push('');
    for (const paragraph of explainSweep(sweep, report.kernel)) out.push(paragraph, '');
    for (const run of sweep) {
      if (runFacts(run).waitedIn['syn-retransmit'].length === 0) continue;
      out.push(...renderRun(run, report, `### Serial lab at backlog ${run.backlogAsked}, client by client`));
    }
  }

  out.push('## Accept-queue depth over time, every run', '');
  out.push(
    `The deepest accept queue sampled in each ${BIN_MS} ms of the run (${seconds(0)} = client 1 starts). ` +
      'Client 1 closes where the serial runs drop back to 0.',
    '',
  );
  const horizon = Math.max(...report.runs.map((r) => r.samples.at(-1)?.t ?? 0));
  const bins = Math.ceil(horizon / BIN_MS);
  out.push(
    `| Run | ${Array.from({ length: bins }, (_, i) => (i % 4 === 0 ? `${(i * BIN_MS) / 1000} s` : '')).join(' | ')} |`,
    `|---|${'---:|'.repeat(bins)}`,
  );
  for (const run of report.runs) {
    const depth = binDepth(run, bins);
    out.push(`| ${runName(run)} | ${depth.map((d) => (d === undefined ? '' : String(d))).join(' | ')} |`);
  }
  out.push('');

  out.push(byHand(report, kernelQueueLab(report.labs)?.id));
  return out;
}

function renderRun(run: RunResult, report: BacklogReport, heading: string): string[] {
  const out = [heading, '', explainRun(run, report), ''];
  out.push(
    '| Client | Started | Connected | Accepted (sampled) | First echo | Closed | Waited where | Outcome |',
    '|---:|---:|---:|---:|---:|---:|---|---|',
  );
  for (const c of run.clients) {
    out.push(
      `| ${c.client} | ${seconds(c.startMs)} | ${seconds(c.connectMs)} | ${seconds(c.acceptedMs)} | ${seconds(c.firstEchoMs)} | ` +
        `${seconds(c.closedMs)} | ${describeWaits(c)} | ${c.outcome}${c.error ? ` (${c.error})` : ''} |`,
    );
  }
  out.push('');
  // A snapshot with nothing under its header line (no client in SYN-SENT) says nothing: leave it out.
  const shown = run.ss.filter((snapshot) => snapshot.command.startsWith('ss -ltn') || snapshot.output.split('\n').length > 1);
  if (shown.length > 0) {
    out.push(`What \`ss\` printed at ${seconds(shown[0]!.atMs)}, while client 1 held its connection (the port was picked by the kernel):`, '');
    out.push('```', ...shown.flatMap((snapshot) => [`$ ${snapshot.command}`, snapshot.output]), '```', '');
  }
  return out;
}

function summarizeWaits(clients: readonly ClientRecord[]): string {
  const counts = new Map<string, number>();
  for (const c of clients) {
    const key = c.outcome !== 'served' ? c.outcome : c.waits.length === 0 ? 'nowhere' : c.waits.map((w) => PLACE_NAMES[w.where]).join(' → ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([where, n]) => `${n}× ${where}`).join('; ');
}

function binDepth(run: RunResult, bins: number): Array<number | undefined> {
  const depth: Array<number | undefined> = Array.from({ length: bins }, () => undefined);
  for (const sample of run.samples) {
    const i = Math.floor(Math.max(0, sample.t) / BIN_MS);
    if (i < bins) depth[i] = Math.max(depth[i] ?? 0, sample.acceptQueueDepth);
  }
  return depth;
}

/** The model as the registry described it when the run was measured (copied into the JSON). */
function modelOf(run: RunResult, report: BacklogReport): string {
  return report.labs.find((lab) => lab.id === run.lab)?.model ?? run.model;
}

function runName(run: RunResult): string {
  return run.kind === 'sweep' ? `${run.lab} backlog ${run.backlogAsked}` : run.lab;
}

