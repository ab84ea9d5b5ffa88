/**
 * Renders results/soak.json: one Summary row per lab (load, failures, memory, back to baseline),
 * the checks a healthy server passes as findings, then each lab's memory and descriptors over time.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check } from '../kit/findings.js';
import { labLabel } from '../kit/labs.js';
import type { ReportFile } from '../kit/report-file.js';
import { once, type Table } from '../kit/table.js';
import { median } from '../kit/stats.js';
import type { LabSoak, SoakConfig } from './measure.js';

/** 2: names its experiment, carries the lab descriptions; one soak per lab is a run. */
export const SOAK_SCHEMA = 2;

export interface SoakReport extends ReportFile<'soak', typeof SOAK_SCHEMA> {
  readonly config: SoakConfig;
  readonly runs: readonly LabSoak[];
}

const MiB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** About this many rows per lab in the over-time tables. */
const TIMELINE_ROWS = 12;

const failures = (soak: LabSoak) => soak.load.errors + soak.load.timeouts + soak.load.non2xx + soak.load.mismatches + soak.churn.wrong + soak.churn.errors + soak.churn.timeouts;

/**
 * Levelling off: the median of the last third of the run against the median of the middle
 * third (medians, because a garbage collector makes single samples jump both ways), within a
 * tenth of what the load first added, or 4 MiB, whichever is more.
 */
export function levelledOff(soak: LabSoak): boolean {
  const rss = soak.samples.map((s) => s.rssBytes);
  const third = Math.max(1, Math.floor(rss.length / 3));
  const middle = rss.length > third ? median(rss.slice(third, 2 * third)) : 0;
  const last = rss.length > 2 * third ? median(rss.slice(2 * third)) : 0;
  return last - middle <= Math.max((middle - soak.baseline.rssBytes) / 10, 4 * 2 ** 20);
}

export function renderSoak(report: SoakReport): Page {
  const { config } = report;
  const label = (soak: LabSoak) => labLabel(report.labs, soak.lab);
  const peak = (soak: LabSoak) => Math.max(...soak.samples.map((s) => s.rssBytes));
  const summary: Table = {
    rowHeader: 'lab',
    columns: [
      { header: 'req/s', unit: 'rate', better: 'higher', throughput: true, explain: 'autocannon responses per second, mean over the run (one run per lab: nothing is ranked)' },
      { header: 'p99 ms', unit: 'ms', better: 'lower' },
      { header: 'failed', unit: 'count', explain: 'requests and churn cycles that failed: non-2xx, a wrong body, an error or a timeout' },
      { header: 'RSS at rest', unit: 'bytes', explain: "resident memory of the server's whole process tree before the load, at its peak, and after the load stopped" },
      { header: 'RSS peak', unit: 'bytes', better: 'lower' },
      { header: 'RSS after', unit: 'bytes' },
      { header: 'back to baseline', unit: 'count', explain: 'descriptors and children back to what they were before the load, and how soon' },
    ],
    rows: report.runs.map((soak) => ({
      label: label(soak),
      starved: soak.load.timeouts + soak.churn.timeouts > 0,
      cells: [
        { summary: once(soak.load.requestsPerSecond) },
        { summary: once(soak.load.latencyP99Ms) },
        { summary: once(failures(soak)) },
        { summary: once(soak.baseline.rssBytes) },
        { summary: once(peak(soak)) },
        { summary: once(soak.settled.rssBytes) },
        { text: soak.settled.atBaseline ? `yes, in ${(soak.settled.afterMs / 1000).toFixed(1)} s` : `no (${soak.settled.serverFds} fds, ${soak.settled.processes - 1} children)` },
      ],
    })),
  };
  return {
    intro:
      `Each lab ran ${config.seconds} s in http mode under autocannon (${config.connections} keep-alive connections) plus ${config.churners} clients churning connections ` +
      '(connect, one request with `Connection: close`, check the response byte for byte, close, repeat). A healthy server\'s memory levels off instead of climbing, ' +
      'and its descriptors follow the open connections and return to their baseline once the load stops.',
    summary,
    chart: barChart('summary', "Peak memory (RSS) of each lab's process tree under load, MiB", 'MiB', report.runs.map((soak) => ({ label: label(soak), value: peak(soak) / 2 ** 20 }))),
    findings: [
      check('memory levelled off in the last third of the run', report.runs, label, levelledOff),
      check('descriptors and children back to their baseline after the load', report.runs, label, (soak) => soak.settled.atBaseline),
      check('every request and churn cycle answered exactly', report.runs, label, (soak) => failures(soak) === 0),
    ],
    method: [`Samples every ${config.sampleMs / 1000} s. Not part of \`make test\`: run it with \`make soak\` (\`QUICK=1\` for a short check).`],
    detail: report.runs.flatMap(timeline),
  };
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
