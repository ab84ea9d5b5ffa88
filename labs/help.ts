/**
 * `make help`, and plain `make`: what there is to run, on one screen. The labs and the variables
 * each takes come from the registry (labs/index.ts) and labs/make-flags.ts; every other target
 * from the Makefile's own `target: ... ## what it does` lines. Nothing here is written twice.
 *
 * Usage: node dist/labs/help.js MAKEFILE
 */

import { readFileSync } from 'node:fs';
import { LABS } from './index.js';
import { COMMON_VARIABLES } from './make-flags.js';

/** Widest line printed: an 80-column terminal. */
const WIDTH = 80;

/** `text` folded at spaces to lines of at most `width`, the later ones indented by `indent`. */
function wrap(text: string, indent: number, width = WIDTH): string[] {
  const lead = /^ */.exec(text)![0];
  const lines: string[] = [];
  let line = '';
  for (const word of text.slice(lead.length).split(' ')) {
    if (line === '') line = lead + word;
    else if (line.length + 1 + word.length <= width) line = `${line} ${word}`;
    else {
      lines.push(line);
      line = ' '.repeat(indent) + word;
    }
  }
  return [...lines, line];
}

/**
 * A lab's line, cut after its last clause that fits the width (at a comma: "one event loop per
 * core, each on a worker thread..." keeps "one event loop per core"); the README and the lab's
 * own listening line have the rest.
 */
function oneLine(line: string): string {
  if (line.length <= WIDTH) return line;
  const cut = line.lastIndexOf(',', WIDTH - 1);
  return cut > line.indexOf('  make lab-') + 16 ? line.slice(0, cut) : line;
}

/** The Makefile's documented targets: `name: prerequisites ## description`, in file order. */
function documentedTargets(makefile: string): { name: string; text: string }[] {
  // A pattern rule (`exercise-%`) is listed with NN for its stem.
  return [...makefile.matchAll(/^([a-z][\w%-]*):[^\n#]*## (.+)$/gm)].map((match) => ({ name: match[1]!.replace('%', 'NN'), text: match[2]! }));
}

export function helpText(makefile: string): string {
  const lines = ['The labs: make lab-NN [VARIABLE=value ...] (each README: what to run beside it)'];
  for (const lab of LABS) lines.push(...wrap(oneLine(`  make lab-${lab.id.slice(0, 2)}  ${lab.model.split(';')[0]}`), 15));
  lines.push(...wrap(`Every lab takes: ${Object.keys(COMMON_VARIABLES).join(' ')} QUIET=1 ARGS="..."`, 2));
  const own = LABS.filter((lab) => Object.keys(lab.makeVariables).length > 0);
  lines.push(...wrap(`One lab takes: ${own.map((lab) => `${Object.keys(lab.makeVariables).join(' ')} (lab ${lab.id.slice(0, 2)})`).join(', ')}`, 2));
  lines.push('', 'Other targets (experiments: QUICK=1 for a short run, into results/quick/):');
  const targets = documentedTargets(makefile);
  const width = Math.max(...targets.map((target) => target.name.length));
  for (const { name, text } of targets) lines.push(...wrap(`  make ${name.padEnd(width)}  ${text}`, width + 9));
  return `${lines.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(helpText(readFileSync(process.argv[2] ?? 'Makefile', 'utf8')));
}
