/**
 * The figures READMEs quote from the backlog report, computed from results/backlog.json alone
 * with the same facts and wording the report's own sentences use (facts.ts, wording.ts), so a
 * README and the report cannot say two different things about one run.
 *
 *   backlog/arrival                         the scripted arrival: "3 s hold, 6 clients 100 ms apart"
 *   backlog/LAB/section                     link to the lab's section of results/backlog.md
 *   backlog/LAB/accept-queue-max            deepest accept queue sampled in the run: "0 connections"
 *   backlog/LAB/accept-queue-held           deepest accept queue sampled while client 1 held: "5"
 *   backlog/LAB/echo-after-handshake        clients 2..K, first echo after their handshake: "69 ms–99 ms"
 *   backlog/LAB/accept-queue-wait           (labs whose clients queued) "clients 2–6 waited 2.50 s–2.90 s in the kernel's accept queue"
 *   backlog/LAB/ss-listen                   (when ss ran) the LISTEN line as ss printed it: "`LISTEN 5 511`"
 *   backlog/sweep/section                   link to the backlog sweep
 *   backlog/sweep-N/accept-queue-max        deepest accept queue at backlog N: "2"
 *   backlog/sweep-N/syn-dropped             (when SYNs were dropped) who found the queue full and what it cost them
 *   backlog/sweep-N/listen-overflows        the rise of ListenOverflows during the run: "9"
 */

import { sectionLink, type Figures } from '../readme-figures.js';
import { byResends } from './explain.js';
import { runFacts } from './facts.js';
import { clientList, range, seconds } from './wording.js';
import type { BacklogReport, RunResult } from './results.js';

export function figures(report: BacklogReport): Figures {
  const { holdMs, clients, gapMs } = report.settings;
  const out: Record<string, string> = {
    'backlog/arrival': `${Number((holdMs / 1000).toFixed(2))} s hold, ${clients} clients ${gapMs} ms apart`,
  };
  for (const run of report.runs.filter((r) => r.kind === 'model')) Object.assign(out, modelFigures(run, report));
  const sweep = report.runs.filter((r) => r.kind === 'sweep');
  if (sweep.length > 0) {
    out['backlog/sweep/section'] = sectionLink('backlog', `Backlog sweep: the serial lab at backlog ${sweep.map((r) => r.backlogAsked).join(', ')}`);
  }
  for (const run of sweep) Object.assign(out, sweepFigures(run));
  return out;
}

function modelFigures(run: RunResult, report: BacklogReport): Record<string, string> {
  const f = runFacts(run);
  const at = `backlog/${run.lab}`;
  const model = report.labs.find((lab) => lab.id === run.lab)?.model ?? run.model;
  const out: Record<string, string> = {
    // The heading the report gives the run (render.ts); the test checks the report has it.
    [`${at}/section`]: sectionLink('backlog', `${run.lab}: ${model} (backlog ${run.effectiveBacklog})`),
    [`${at}/accept-queue-max`]: `${f.maxDepth} connection${f.maxDepth === 1 ? '' : 's'}`,
    [`${at}/accept-queue-held`]: `${f.maxDepthWhileHeld}`,
    [`${at}/echo-after-handshake`]: range(f.echoAfterConnectMs),
  };
  const queued = f.waitedIn['accept-queue'];
  if (queued.length > 0) {
    const waits = queued.flatMap((c) => c.waits.filter((w) => w.where === 'accept-queue').map((w) => w.toMs - w.fromMs));
    out[`${at}/accept-queue-wait`] = `${clientList(queued)} waited ${range(waits)} in the kernel's accept queue`;
  }
  const listen = run.ss.flatMap((s) => s.output.split('\n')).find((line) => line.startsWith('LISTEN'));
  if (listen) out[`${at}/ss-listen`] = `\`${listen.trim().split(/\s+/).slice(0, 3).join(' ')}\``;
  return out;
}

function sweepFigures(run: RunResult): Record<string, string> {
  const f = runFacts(run);
  const at = `backlog/sweep-${run.backlogAsked}`;
  const out: Record<string, string> = {
    [`${at}/accept-queue-max`]: `${f.maxDepth}`,
    [`${at}/listen-overflows`]: `${f.listenOverflows}`,
  };
  const retried = f.waitedIn['syn-retransmit'];
  if (retried.length > 0) {
    const matched = retried.filter((c) => c.synRetransmitsS !== undefined);
    out[`${at}/syn-dropped`] =
      `${clientList(retried)} found it full; their handshakes took ${retried.map((c) => seconds((c.connectMs ?? c.startMs) - c.startMs)).join(', ')}` +
      (matched.length > 0 ? `: ${byResends(matched)}` : '');
  }
  return out;
}
