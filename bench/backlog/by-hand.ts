/**
 * The report's last section, "See it by hand": static prose and transcripts in by-hand.md, with
 * one slot filled from the run (what `ss` printed for the swept lab while client 1 held).
 */

import { readFileSync } from 'node:fs';
import { seconds } from './format.js';
import type { BacklogReport } from './types.js';

const TEMPLATE = new URL('./by-hand.md', import.meta.url);

export function byHand(report: BacklogReport, sweptLab: string | undefined): string {
  // The comment at the top says what the file is; the report starts at the heading.
  const text = readFileSync(TEMPLATE, 'utf8').replace(/^<!--[\s\S]*?-->\n/, '');
  const run = report.runs.find((r) => r.kind === 'model' && r.lab === sweptLab);
  const snapshot = run?.ss.find((s) => s.command.startsWith('ss -ltn'));
  const fromRun = snapshot
    ? [
        `For comparison, the measured run above: \`ss\` printed this for the serial lab at ${seconds(snapshot.atMs)}, ` +
          `while client 1 held its connection and clients 2–${report.settings.clients} waited:`,
        '',
        '```',
        `$ ${snapshot.command}`,
        snapshot.output,
        '```',
        '',
        '',
      ].join('\n')
    : '';
  return text.replace('{{from-run}}\n', fromRun);
}
