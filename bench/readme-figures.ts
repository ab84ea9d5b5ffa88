/**
 * Figures that READMEs quote from the committed reports, generated rather than typed. A README
 * marks a place, inside a sentence:
 *
 *     the echoes came <!-- figure backlog/02-process-per-connection/echo-after-handshake -->69 ms–99 ms<!-- /figure --> after …
 *
 * or, for a table, on lines of their own:
 *
 *     <!-- figure bench/some-table -->
 *     | … |
 *     <!-- /figure -->
 *
 * Each experiment's render step computes every figure it owns from its JSON alone (its
 * `bench/NAME/figures.ts`), then rewrites the text between the markers. A test computes them again
 * from the committed JSON and fails when a README says something else, so a README can never quote
 * a number that no committed run measured.
 *
 * Why inline markers stay on one line: a line that *starts* with `<!--` begins an HTML block in
 * Markdown and would cut the paragraph in two, so within a sentence the markers sit mid-line.
 */

import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../harness/launch.js';
import { reportPaths } from './kit/report-file.js';

/**
 * Figure name → the Markdown that stands between its markers. Names are "experiment/what" (the
 * part before the first "/" is the experiment that owns it). A link in a figure is written
 * relative to the repository root (`results/backlog.md#…`); each README gets it relative to itself.
 */
export type Figures = Readonly<Record<string, string>>;

/** The marker pair, keeping the whitespace inside it: none inline, a line break around a block. */
const MARKED = /<!-- figure ([\w./@-]+) -->(\s*)([\s\S]*?)(\s*)<!-- \/figure -->/g;
const OPENING = /<!-- figure\b/g;
const CLOSING = /<!-- \/figure -->/g;

export interface MarkedFigure {
  readonly name: string;
  /** What stands between the markers now, without the whitespace around it. */
  readonly text: string;
}

/** Every marked figure in `text`, in order (a figure may be marked more than once). */
export function markedFigures(text: string): MarkedFigure[] {
  return [...text.matchAll(MARKED)].map((match) => ({ name: match[1]!, text: match[3]! }));
}

/** A problem with the markers themselves (one without its partner), or undefined. */
export function markerProblem(text: string): string | undefined {
  const pairs = markedFigures(text).length;
  const opened = text.match(OPENING)?.length ?? 0;
  const closed = text.match(CLOSING)?.length ?? 0;
  return opened === pairs && closed === pairs ? undefined : `${opened} opening and ${closed} closing figure markers, ${pairs} complete pairs`;
}

/** `figure` as it reads in `file` (repository-relative): its root-relative links made relative to the file. */
export function figureIn(figure: string, file: string): string {
  const from = path.posix.dirname(file.split(path.sep).join('/'));
  return figure.replace(/\]\(([^)\s]+)\)/g, (whole, target: string) => {
    if (/^([a-z][a-z+.-]*:|#|\/)/i.test(target)) return whole;
    const [file, anchor] = target.split('#', 2) as [string, string | undefined];
    return `](${path.posix.relative(from, file) || path.posix.basename(file)}${anchor === undefined ? '' : `#${anchor}`})`;
  });
}

/**
 * `text` (the content of `file`, repository-relative) with every marked figure that `figures`
 * knows replaced by its current value; figures of other experiments are left as they are.
 */
export function applyFigures(text: string, figures: Figures, file: string): string {
  return text.replace(MARKED, (whole, name: string, before: string, _old: string, after: string) =>
    name in figures ? `<!-- figure ${name} -->${before}${figureIn(figures[name]!, file)}${after}<!-- /figure -->` : whole,
  );
}

/** Rewrites the marked figures of each file (absolute paths) in place; returns the files that changed. */
export function updateFigureFiles(files: readonly string[], figures: Figures): string[] {
  const changed: string[] = [];
  for (const file of files) {
    const before = readFileSync(file, 'utf8');
    const after = applyFigures(before, figures, path.relative(repoRoot, file));
    if (after !== before) {
      writeFileSync(file, after);
      changed.push(file);
    }
  }
  return changed;
}

/** The READMEs that quote reports: the top-level one and every lab's (labs/*\/README.md). */
export function readmeFiles(root = repoRoot): string[] {
  const labs = path.join(root, 'labs');
  const ofLabs = readdirSync(labs, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(labs, entry.name, 'README.md'))
    .filter((file) => existsSync(file))
    .sort();
  return [path.join(root, 'README.md'), ...ofLabs];
}

/**
 * The render step's last act: when the run rendered the committed results file of `experiment`
 * (results/NAME.json, not a quick run), the READMEs' figures are brought up to date from it and the files changed
 * are named on stderr. A quick run, or a render of some other file, leaves the READMEs alone: they
 * quote committed reports only.
 */
export function publishFigures(experiment: string, run: { readonly quick: boolean; readonly output: string }, figures: Figures): void {
  if (run.quick || path.resolve(run.output) !== reportPaths(experiment, false).json) return;
  const changed = updateFigureFiles(readmeFiles(), figures);
  const shown = changed.map((file) => path.relative(repoRoot, file));
  process.stderr.write(`[${experiment}] README figures: ${shown.length ? `updated ${shown.join(', ')}` : 'already current'}\n`);
}

/**
 * The anchor GitHub gives a heading: lower case, punctuation other than "-" and "_" dropped,
 * each space a hyphen (so " + " becomes "--").
 */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** A link to one section of a committed report: `[results/bench.md, "1. Raw echo"](results/bench.md#1-raw-echo)`. */
export function sectionLink(experiment: string, heading: string): string {
  const report = `results/${experiment}.md`;
  return `[${report}, "${heading}"](${report}#${headingAnchor(heading)})`;
}
