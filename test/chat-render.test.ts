/**
 * results/chat.md from a results file alone: the 100-member table leads, a run the load generator
 * capped is marked and never ranked, a cell a lab cannot take says why, and the slow-reader table
 * shows both runs. Built from a small report written here (no measurement).
 */

import { describe, expect, it } from 'vitest';
import { chat } from '../bench/chat/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';

const renderChatReport = (r: ChatReport) => renderMarkdown(chat, r);
import type { ChatReport, ChatRun } from '../bench/chat/results.js';
import { describeLabs } from '../bench/kit/labs.js';
import type { Stamp } from '../bench/kit/stamp.js';

const stamp: Stamp = {
  cpuModel: 'test CPU', cores: 2, memoryGiB: 4, kernel: 'Linux test', node: 'v20.0.0', date: '2026-01-01T00:00:00.000Z',
  gitRevision: 'abc', command: 'make chat', somaxconn: 4096, loadAverage1m: 0.1,
};

const run = (members: number, senders: number, perSec: number, loadGen: number, more: Partial<ChatRun> = {}): ChatRun => ({
  members, senders, stuck: 0, size: 64, windowS: 1, messages: 100, deliveries: perSec, deliveriesPerSec: perSec,
  latencyUs: { count: 100, p50: 1000, p99: 2000, max: 3000 }, serverCpuMs: perSec / 200, serverPeakRssBytes: 64 * 2 ** 20,
  loadGenCoreFraction: loadGen, cutOff: 0, errors: { connect: 0, socket: 0, order: 0, missing: 0, total: 0 }, ...more,
});

const report: ChatReport = {
  experiment: 'chat', schema: 1, stamp, labs: describeLabs(['02-process-per-connection', '04-evented', '06-loop-per-core']),
  results: {
    settings: { rooms: [10, 100], senders: [1, 10], size: 64, warmupS: 1, seconds: 1, slow: { members: 50, size: 4000, seconds: 5 } },
    leftOut: [{ lab: '01-serial', reason: 'its room never has more than one member' }],
    targets: [
      {
        lab: '02-process-per-connection', label: '02 process/conn', variant: '',
        runs: [run(10, 1, 3000, 0.05), run(10, 10, 9000, 0.05)],
        skipped: [{ members: 100, reason: 'each member is a whole Node process' }],
        slow: { skipped: 'each member is a whole Node process' },
      },
      {
        lab: '04-evented', label: '04 evented', variant: '',
        runs: [run(10, 1, 80_000, 0.4), run(10, 10, 90_000, 0.4), run(100, 1, 150_000, 0.95), run(100, 10, 100_000, 0.5)],
        skipped: [],
        slow: { without: run(50, 1, 40_000, 0.4, { size: 4000 }), with: run(50, 1, 39_000, 0.4, { size: 4000, stuck: 1, cutOff: 1 }) },
      },
      {
        // Failed at its second cell, as main.ts records it: the run stops there.
        lab: '06-loop-per-core', label: '06 loop per core', variant: 'handoff',
        runs: [run(10, 1, 50_000, 0.4)],
        skipped: [],
        slow: { skipped: 'the run stopped at 10 members, 10 senders, before this case' },
        failed: 'only 512 of 1000 members could join (the server closed a reading member (member 302))',
        failedAt: { members: 10, senders: 10 },
      },
    ],
  },
};

/** Lab 07 beside lab 04: each of its variants gets its own figure, and the ratio to lab 04's. */
const completion: ChatReport = {
  ...report,
  labs: describeLabs(['04-evented', '07-completion']),
  results: {
    ...report.results,
    targets: [
      report.results.targets[1]!,
      ...[['batch, multishot', 250], ['each, single', 1000]].map(([variant, serverCpuMs]) => ({
        lab: '07-completion', label: '07 completion', variant: variant as string,
        runs: [run(100, 10, 100_000, 0.5, { serverCpuMs: serverCpuMs as number })],
        skipped: [],
        slow: { skipped: 'not in this test' },
      })),
    ],
  },
};

describe('chat report', () => {
  const markdown = renderChatReport(report);

  it('opens with a Summary row per model at 100 members; a capped run is marked and never ranked or named best', () => {
    expect(markdown.split('\n').indexOf('## Summary')).toBeLessThan(40);
    expect(markdown).toContain('| 04 evented | 5.0 | 100,000 | ');
    const summaryTable = markdown.slice(markdown.indexOf('## Summary'), markdown.indexOf('## How this run was made'));
    expect(summaryTable.split('\n').filter((line) => line.startsWith('|')).join('\n')).not.toContain('**');
    expect(markdown).not.toMatch(/the (most|least) (deliveries|server CPU)/);
    expect(markdown).toContain('| 04 evented | 1 | 150k ⚠ |');
    expect(markdown).toContain('| 02 process/conn | – | not measured: each member is a whole Node process |');
  });

  it('a failed run says so once, in the cell it failed in; the cells after it say the run had stopped there', () => {
    expect(markdown).toContain('| 06 loop per core (handoff) | 1 | 50.0k |');
    expect(markdown).toContain('| 06 loop per core (handoff) | 10 | failed: only 512 of 1000 members could join (the server closed a reading member (member 302)) | | | | | |');
    expect(markdown).toContain('| 06 loop per core (handoff) | 1 | not measured: the run stopped at 10 members, 10 senders | | | | | |');
    expect(markdown).toContain('| 06 loop per core (handoff) | not measured: the run stopped at 10 members, 10 senders, before this case | | | | | | |');
    expect(markdown).toContain('06 loop per core (handoff): the run stopped early, at 10 members, 10 senders: only 512 of 1000 members could join');
    expect(markdown).not.toContain('not measured: not measured');
    expect(markdown.match(/member 302/g)).toHaveLength(2); // the table's cell and the sentence under it
  });

  it('the slow-reader table shows both runs and the cut-off; labs left out say why', () => {
    expect(markdown).toContain('| 04 evented | 2.00 | 2.00 | 40.0k | 39.0k | 64.0 MiB | 64.0 MiB | 1 |');
    expect(markdown).toContain('- 01-serial: its room never has more than one member.');
  });

  it('names no lab of its own: every name comes from the results file', () => {
    const text = renderChatReport(completion);
    expect(text).not.toMatch(/\*\*0\d, /);
    expect(text).toContain('- Server CPU per delivery at 100 members, 10 senders, most against least: 07 completion (each, single) (10.0) against 07 completion (batch, multishot) (2.5), 4.0× as much.');
  });
});
