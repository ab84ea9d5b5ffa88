/**
 * The report's last section, "See it by hand": static prose and transcripts in by-hand.md, with
 * one slot filled from the run (what `ss` printed for the swept lab while client 1 held).
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../harness/launch.js';
import { seconds } from './wording.js';
import type { BacklogReport } from './results.js';

/** Next to this file in the source tree; from the repository root, so the compiled copy finds it too. */
const TEMPLATE = path.join(repoRoot, 'bench', 'backlog', 'by-hand.md');

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
