/**
 * Renders results/soak.json as Markdown: the machine stamp, what each column means, one summary
 * row per lab, then each lab's memory and descriptors over time.
 */

import { describeLabs, type LabDescription } from '../kit/labs.js';
import type { ReportFile } from '../kit/report-file.js';
import { renderStamp, type Stamp } from '../kit/stamp.js';
import { median } from '../kit/stats.js';
import type { LabSoak, SoakConfig } from './measure.js';
import type { SoakSample } from './sample.js';

/** 2: names its experiment, carries the lab descriptions; one soak per lab is a run. */
export const SOAK_SCHEMA = 2;

export interface SoakReport extends ReportFile<'soak', typeof SOAK_SCHEMA> {
  readonly config: SoakConfig;
  readonly runs: readonly LabSoak[];
}

/**
 * The schema-1 file (no schema field; the soaks under `labs`) lifted to schema 2: its labs'
 * descriptions come from the registry as it is at migration, since schema 1 carried none.
 */
export function migrateSoakV1(raw: Record<string, unknown>): SoakReport | undefined {
  if (raw.schema !== undefined || !Array.isArray(raw.labs) || raw.config === undefined) return undefined;
  const old = raw as unknown as { stamp: Stamp; config: SoakConfig; labs: LabSoak[] };
  return { experiment: 'soak', schema: SOAK_SCHEMA, stamp: old.stamp, labs: describeLabs(old.labs.map((run) => run.lab)), config: old.config, runs: old.labs };
}

const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** About this many rows per lab in the over-time tables. */
const TIMELINE_ROWS = 12;

export function renderSoak(report: SoakReport): string {
  const { config } = report;
  return [
    '# Soak: memory and descriptors under sustained load',
    '',
    renderStamp(report.stamp),
    `Each lab ran ${config.seconds} s in http mode under autocannon (${config.connections} keep-alive connections) ` +
      `plus ${config.churners} clients churning connections (connect, one request with \`Connection: close\`, ` +
      `check the response byte for byte, close, repeat). Samples every ${config.sampleMs / 1000} s. Not part of ` +
      '`make test`: run it with `make soak` (`QUICK=1` for a short check).',
    '',
    'What a healthy server shows: memory that levels off instead of climbing with time, a descriptor count that ' +
      'follows the open connections and returns to its baseline once the load stops, and no child left behind.',
    '',
    '## Summary',
    '',
    'Columns: **req/s** autocannon responses per second (mean over the run), its **p50/p99** latency and what ' +
      'went wrong (non-2xx status, a body other than the echo, connection errors, timeouts); ' +
      '**churn** connect-request-close cycles that got an exact response, then wrong answers / errors / timeouts; ' +
      '**RSS** resident memory of the whole process tree (server plus children) at rest before the load, its peak, ' +
      'the last sample under load, and after the load stopped; **fds** open descriptors of the server process at ' +
      'rest, at peak and after; **settled** whether descriptors and children were back to the baseline, and how soon; ' +
      '**exit** the status after SIGTERM.',
    '',
    '| lab | req/s | p50 / p99 ms | non-2xx / wrong body / errors / timeouts | churn ok | churn wrong / err / timeout | RSS rest → peak → end → after (MiB) | fds rest → peak → after | settled | exit |',
    '|---|---:|---:|---:|---:|---:|---|---|---|---|',
    ...report.runs.map(summaryRow),
    '',
    '### What this shows',
    '',
    ...report.runs.map((run) => finding(run, report.labs)),
    '',
    ...report.runs.flatMap(timeline),
  ].join('\n');
}

function summaryRow(soak: LabSoak): string {
  const peak = (pick: (s: SoakSample) => number) => Math.max(...soak.samples.map(pick));
  const last = soak.samples.at(-1)!;
  const { load, churn, settled } = soak;
  return [
    '',
    soak.lab,
    load.requestsPerSecond.toFixed(0),
    `${load.latencyP50Ms} / ${load.latencyP99Ms}`,
    `${load.non2xx} / ${load.mismatches} / ${load.errors} / ${load.timeouts}`,
    churn.ok,
    `${churn.wrong} / ${churn.errors} / ${churn.timeouts}`,
    `${MiB(soak.baseline.rssBytes)} → ${MiB(peak((s) => s.rssBytes))} → ${MiB(last.rssBytes)} → ${MiB(settled.rssBytes)}`,
    `${soak.baseline.serverFds} → ${peak((s) => s.serverFds)} → ${settled.serverFds}`,
    settled.atBaseline ? `yes, in ${(settled.afterMs / 1000).toFixed(1)} s` : `**no** (${settled.serverFds} fds, ${settled.processes - 1} children after ${(settled.afterMs / 1000).toFixed(0)} s)`,
    soak.exit.signal ?? String(soak.exit.code),
    '',
  ].join(' | ').trim();
}

/** One generated sentence per lab: did memory level off, did descriptors return, what failed and why. */
function finding(soak: LabSoak, labs: readonly LabDescription[]): string {
  // Levelling off: the median of the last third of the run against the median of the middle
  // third. Medians, because a garbage collector makes single samples jump both ways.
  const rss = soak.samples.map((s) => s.rssBytes);
  const third = Math.max(1, Math.floor(rss.length / 3));
  const middle = rss.length > third ? median(rss.slice(third, 2 * third)) : 0;
  const last = rss.length > 2 * third ? median(rss.slice(2 * third)) : 0;
  const growth = last - middle;
  // Tolerance: a tenth of what the load first added, or 4 MiB, whichever is more.
  const tolerance = Math.max((middle - soak.baseline.rssBytes) / 10, 4 * 2 ** 20);
  const memory =
    growth <= tolerance
      ? `memory levelled off (median of the last third of the run ${MiB(last)} MiB against ${MiB(middle)} MiB in the middle third)`
      : `memory was still climbing (median of the last third of the run ${MiB(last)} MiB against ${MiB(middle)} MiB in the middle third)`;
  const fds = soak.settled.atBaseline ? 'descriptors and children were back to their baseline after the load' : '**descriptors or children were not back to their baseline**';
  const failed = soak.load.errors + soak.load.timeouts + soak.load.non2xx + soak.load.mismatches + soak.churn.wrong + soak.churn.errors + soak.churn.timeouts;
  const limit = labs.find((lab) => lab.id === soak.lab)?.limit;
  const failures =
    failed === 0
      ? 'every request and churn cycle got its exact echo'
      : `${failed} requests or cycles failed or timed out` + (limit ? ` (this model ${limit})` : '');
  return `- ${soak.lab}: ${memory}; ${fds}; ${failures}.`;
}

function timeline(soak: LabSoak): string[] {
  const step = Math.max(1, Math.round(soak.samples.length / TIMELINE_ROWS));
  const rows = soak.samples.filter((_, i) => i % step === 0 || i === soak.samples.length - 1);
  return [
    `## ${soak.lab} over time`,
    '',
    'Columns: **t** seconds since the load started; **RSS** of the tree; **processes** in the tree; **fds** of the ' +
      'server process and summed over the tree; **req/s** and **churn/s** completed since the previous row.',
    '',
    '| t (s) | RSS (MiB) | processes | fds server / tree | req/s | churn/s |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rows.map((sample, i) => {
      const previous = i === 0 ? undefined : rows[i - 1]!;
      const seconds = previous ? (sample.tMs - previous.tMs) / 1000 : 0;
      const rate = (now: number, before: number | undefined) => (previous && seconds > 0 ? ((now - (before ?? 0)) / seconds).toFixed(0) : '–');
      return `| ${(sample.tMs / 1000).toFixed(0)} | ${MiB(sample.rssBytes)} | ${sample.processes} | ${sample.serverFds} / ${sample.treeFds} | ${rate(sample.responses, previous?.responses)} | ${rate(sample.churnCycles, previous?.churnCycles)} |`;
    }),
    '',
  ];
}
