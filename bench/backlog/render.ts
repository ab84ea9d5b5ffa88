/**
 * results/backlog.json -> results/backlog.md. Rendering reads only the JSON, so an old
 * measurement can be re-rendered at any time; every sentence about a run comes from explain.ts.
 */

import { renderStamp } from '../kit/stamp.js';
import { kernelQueueLab } from '../kit/labs.js';
import { byHand } from './by-hand.js';
import { explainRun, explainSweep } from './explain.js';
import { runFacts } from './facts.js';
import { clientList, describeWaits, PLACE_NAMES, range, seconds } from './format.js';
import type { BacklogReport, ClientRecord, RunResult } from './types.js';

/** Width of the bins in the depth-over-time chart and table. */
const BIN_MS = 250;

export function renderReport(report: BacklogReport): string {
  const models = report.runs.filter((r) => r.kind === 'model');
  const sweep = report.runs.filter((r) => r.kind === 'sweep');
  const s = report.settings;
  const out: string[] = [];
  out.push('# The backlog experiment: where clients wait while a server is busy', '');
  out.push(renderStamp(report.stamp));
  out.push(
    `Every lab got the same scripted arrival. Client 1 connects, sends a line and, once it has its echo, keeps the connection open ` +
      `for ${seconds(s.holdMs)} after connecting. From its echo on, clients 2–${s.clients} start connecting ${s.gapMs} ms apart; ` +
      `each sends a line as soon as its handshake completes and closes as soon as the echo is back. ` +
      `Every ${s.sampleMs} ms a separate thread read the listening socket and every client's connection from \`/proc/net/tcp\` ` +
      `and the ListenOverflows/ListenDrops counters from \`/proc/net/netstat\`. ` +
      (report.network === 'own network namespace'
        ? 'The experiment ran in a network namespace of its own (`unshare --net`), so those tables and counters saw its sockets only. '
        : 'It shared the network namespace with the rest of the machine, so ListenOverflows/ListenDrops may include other programs\' drops. ') +
      `The whole measurement took ${seconds(report.wallMs)}.`,
    '',
    'Measure again with `make backlog` (writes `results/backlog.json`, then this file); re-render this file from the JSON alone with ' +
      '`make backlog BACKLOG_ARGS=--render-only`.',
    '',
  );

  out.push('## Summary', '');
  out.push(
    `| Lab (model) | Backlog | Accept queue while client 1 held (max sampled) | Clients 2–${s.clients} answered while client 1 held | Where clients 2–${s.clients} waited | Their first echo, from the start of connect() | ListenOverflows |`,
    '|---|---:|---:|---:|---|---:|---:|',
  );
  for (const run of [...models, ...sweep]) {
    const f = runFacts(run);
    out.push(
      `| ${run.lab}${run.kind === 'sweep' ? ` (sweep)` : ''} — ${modelOf(run, report)} | ${run.effectiveBacklog} | ${f.maxDepthWhileHeld} | ` +
        `${f.echoedWhileHeld.length} of ${f.others.length} | ${summarizeWaits(f.others)} | ${range(f.echoAfterStartMs)} | +${f.listenOverflows} |`,
    );
  }
  out.push('');

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
    '- **Charts**: one bar per phase of each client. Red (critical): handshake not completed, SYN being retransmitted. ' +
      'Blue (active): connected, waiting in a queue. Grey (done): being served, from the first echo (client 1: from its connect) to its close. ' +
      'The axis is seconds since client 1 started.',
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
  return out.join('\n');
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
  out.push('', ...gantt(run), '');
  const f = runFacts(run);
  if (f.maxDepth > 0) out.push(...depthChart(run, report), '');
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

/** A Mermaid gantt chart: one section per client, one bar per phase. GitHub renders it. */
function gantt(run: RunResult): string[] {
  const lines = ['```mermaid', 'gantt', `    title ${runName(run)}: each client over time (s since client 1 started)`];
  lines.push('    dateFormat x', '    axisFormat %s.%L', '    tickInterval 500millisecond', '    todayMarker off');
  const bar = (name: string, tag: string, from: number, to: number) =>
    `    ${name} :${tag}, ${Math.max(0, Math.round(from))}, ${Math.max(Math.round(from) + 1, Math.round(to))}`;
  for (const c of run.clients) {
    lines.push(`    section client ${c.client}`);
    for (const w of c.waits) {
      const name = { 'syn-retransmit': 'SYN dropped, resent', 'final-ack-dropped': 'final ACK dropped', 'accept-queue': 'accept queue', 'user-space': 'user space', unobserved: 'waiting' }[w.where];
      lines.push(bar(name, w.where === 'syn-retransmit' || w.where === 'final-ack-dropped' ? 'crit' : 'active', w.fromMs, w.toMs));
    }
    const end = c.closedMs ?? c.closeMs ?? c.firstEchoMs;
    if (c.outcome !== 'served') {
      if (c.waits.length === 0) lines.push(bar(c.outcome, 'crit', c.startMs, end ?? run.durationMs));
    } else if (c.client === 1 && c.connectMs !== undefined) {
      lines.push(bar('served, holding the connection', 'done', c.waits.at(-1)?.toMs ?? c.connectMs, end ?? run.durationMs));
    } else if (c.firstEchoMs !== undefined) {
      if (c.waits.length === 0) lines.push(bar('connect', 'active', c.startMs, c.connectMs ?? c.firstEchoMs));
      lines.push(bar('echo, close', 'done', c.firstEchoMs, end ?? c.firstEchoMs));
    }
  }
  lines.push('```');
  return lines;
}

/** Accept-queue depth over time as a Mermaid xychart (GitHub renders it). */
function depthChart(run: RunResult, report: BacklogReport): string[] {
  const bins = Math.ceil((run.samples.at(-1)?.t ?? 0) / BIN_MS);
  const depth = binDepth(run, bins).map((d) => d ?? 0);
  const labels = depth.map((_, i) => ((i * BIN_MS) / 1000).toFixed(2));
  return [
    '```mermaid',
    '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "#4c6ef5"}}}}%%',
    'xychart-beta',
    `    title "${runName(run)}: accept-queue depth (Recv-Q), max per ${BIN_MS} ms"`,
    `    x-axis "seconds since client 1 started" [${labels.join(', ')}]`,
    `    y-axis "connections waiting for accept()" 0 --> ${Math.max(report.settings.clients, ...depth)}`,
    `    bar [${depth.join(', ')}]`,
    '```',
  ];
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

