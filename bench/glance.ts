/**
 * results/README.md's Summary, "the lab at a glance": one row per lab, the figure of each committed report
 * that says most about the model, each linked to the report it comes from. Every cell is a figure
 * of that report's own Summary (kit/experiment.ts Page), computed from its committed JSON, so the
 * glance can never say what a report does not; test/glance.test.ts computes it again and fails
 * when results/README.md says something else. Labs and levels come from the results files (which
 * copied the registry when they were measured): a new lab or a new idle level shows up by itself.
 *
 *   node --import tsx bench/glance.ts     rewrite the table in results/README.md (each committed
 *                                         render does it too)
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { applyFigures } from './readme-figures.js';
import { readReport, type Renderer } from './kit/experiment.js';
import { formatRatio, formatSummary } from './kit/format.js';
import { oneEventLoop, type LabDescription } from './kit/labs.js';
import type { ReportFile } from './kit/report-file.js';
import type { Cell, Table } from './kit/table.js';
import { repoRoot } from '../harness/launch.js';

export const GLANCE_FILE = path.join(repoRoot, 'results', 'README.md');

/** Each report's Summary, with the id of the model behind each row (a lab, or lab + variant). */
interface Source {
  readonly labs: readonly LabDescription[];
  readonly table: Table;
  /** Row i's id, e.g. "05-event-loop@epoll-level", "05-event-loop (poll)". */
  readonly ids: readonly string[];
}

/** The first row of a source that measured `lab` (its first variant, as the registry orders them). */
function rowOf(source: Source | undefined, lab: string): number {
  return source ? source.ids.findIndex((id) => id === lab || id.startsWith(`${lab}@`) || id.startsWith(`${lab} (`)) : -1;
}

/** Column `header` (by its start) of `lab`'s row, linked to the report. */
function cell(source: Source | undefined, report: string, lab: string, header: string): string {
  const row = rowOf(source, lab);
  const column = source?.table.columns.findIndex((c) => c.header.startsWith(header)) ?? -1;
  const found: Cell | undefined = row < 0 || column < 0 ? undefined : source!.table.rows[row]!.cells[column];
  if (!found || (!found.summary && !found.text)) return '–';
  const text = found.summary ? formatSummary(found.summary, source!.table.columns[column]!.unit) : found.text!;
  return `[${text}](results/${report}.md#summary)`;
}

async function load<R extends ReportFile<string, number>>(experiment: Renderer<R>, ids: (report: R) => readonly string[]): Promise<Source | undefined> {
  const file = path.join(repoRoot, 'results', `${experiment.name}.json`);
  if (!existsSync(file)) return undefined;
  const report = readReport(experiment, file);
  return { labs: report.labs, table: experiment.render(report).summary, ids: ids(report) };
}

/** The table, as Markdown with links relative to the repository root (figures.ts makes them relative to the README). */
export async function glanceTable(): Promise<string> {
  // Imported here: each experiment's main.ts is light to import (runMain does nothing when imported).
  const [{ bench }, { chat }, { syscalls }, { backlog }] = await Promise.all([import('./servers/main.js'), import('./chat/main.js'), import('./syscalls/main.js'), import('./backlog/main.js')]);
  const benchSource = await load(bench, (r) => r.targets.filter((t) => !t.unavailable).map((t) => t.id));
  const chatSource = await load(chat, (r) => r.results.targets.map((t) => (t.variant ? `${t.lab} (${t.variant})` : t.lab)));
  const syscallSource = await load(syscalls, (r) => r.results.servers.map((s) => s.id));
  const backlogSource = await load(backlog, (r) => [...r.runs.filter((x) => x.kind === 'model'), ...r.runs.filter((x) => x.kind === 'sweep')].map((x) => (x.kind === 'sweep' ? `${x.lab}@backlog-${x.backlogAsked}` : x.lab)));
  const labs = [...new Map([benchSource, chatSource, syscallSource, backlogSource].flatMap((s) => s?.labs ?? []).map((lab) => [lab.id, lab])).values()].sort((a, b) => a.id.localeCompare(b.id));
  const speedUp = (lab: string): string => {
    const base = labs.find((l) => oneEventLoop(l.traits));
    const column = benchSource?.table.columns.findIndex((c) => c.header.startsWith('CPU-bound')) ?? -1;
    const figure = (id: string) => (rowOf(benchSource, id) < 0 || column < 0 ? undefined : benchSource!.table.rows[rowOf(benchSource, id)]!.cells[column]?.summary?.median);
    const [mine, one] = [figure(lab), base && figure(base.id)];
    return mine === undefined || one === undefined ? '–' : `[${formatRatio(mine / one)}](results/bench.md#summary)`;
  };
  const level = (start: string, fallback: string) => benchSource?.table.columns.find((c) => c.header.startsWith(start))?.header.split(', ')[1] ?? fallback;
  const rows = labs.map((lab) =>
    [
      lab.label,
      cell(benchSource, 'bench', lab.id, 'CPU µs/round trip'),
      cell(benchSource, 'bench', lab.id, 'memory/idle conn'),
      cell(benchSource, 'bench', lab.id, 'CPU µs/busy round trip'),
      speedUp(lab.id),
      cell(chatSource, 'chat', lab.id, 'server µs CPU/delivery'),
      cell(backlogSource, 'backlog', lab.id, 'where they waited'),
      cell(syscallSource, 'syscalls', lab.id, 'calls/round trip'),
    ].join(' | '),
  );
  return [
    `| lab | CPU µs per round trip | memory per idle connection (${level('memory/idle conn', 'idle')}) | CPU µs per busy round trip with ${level('CPU µs/busy round trip', 'the most idle')} | CPU-bound speed-up on all cores | CPU µs per chat delivery | where clients wait while it is busy | system calls per round trip |`,
    '|---|--:|--:|--:|--:|--:|---|--:|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}

/** Rewrites the table in results/README.md; returns whether it changed. */
export async function publishGlance(): Promise<boolean> {
  const before = readFileSync(GLANCE_FILE, 'utf8');
  const after = applyFigures(before, { 'glance/table': await glanceTable() }, path.relative(repoRoot, GLANCE_FILE));
  if (after !== before) writeFileSync(GLANCE_FILE, after);
  return after !== before;
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  void publishGlance().then((changed) => process.stderr.write(`[glance] results/README.md ${changed ? 'updated' : 'already current'}\n`));
}

