/**
 * Figures that READMEs quote from the committed reports, generated rather than typed: a README
 * marks a place with
 *
 *     <!-- figure backlog/serial-wait -->
 *     …generated text…
 *     <!-- /figure -->
 *
 * and each experiment's render step computes every figure it owns from its JSON alone, then
 * rewrites the text between the markers. A test computes them again from the committed JSON and
 * fails when a README says something else, so a README can never quote a number that no committed
 * run measured.
 */

import { readFileSync, writeFileSync } from 'node:fs';

/** Figure name → the Markdown that stands between its markers. Names are "experiment/what". */
export type Figures = Readonly<Record<string, string>>;

const MARKED = /<!-- figure ([\w./-]+) -->\n([\s\S]*?)<!-- \/figure -->/g;

/** Every marked figure in `text`, with what stands there now. */
export function markedFigures(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of text.matchAll(MARKED)) found.set(match[1]!, match[2]!.replace(/\n$/, ''));
  return found;
}

/**
 * `text` with every marked figure that `figures` knows replaced by its current value; figures of
 * other experiments are left as they are.
 */
export function applyFigures(text: string, figures: Figures): string {
  return text.replace(MARKED, (whole, name: string) => (name in figures ? `<!-- figure ${name} -->\n${figures[name]}\n<!-- /figure -->` : whole));
}

/** Rewrites the marked figures of each file in place; returns the files that changed. */
export function updateFigureFiles(files: readonly string[], figures: Figures): string[] {
  const changed: string[] = [];
  for (const file of files) {
    const before = readFileSync(file, 'utf8');
    const after = applyFigures(before, figures);
    if (after !== before) {
      writeFileSync(file, after);
      changed.push(file);
    }
  }
  return changed;
}
