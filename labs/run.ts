/**
 * `make lab-NN`: finds lab NN in the registry (labs/index.ts), turns the make variables into its
 * flags, and runs the lab's own entry (its main.js) in this same process. No second Node process
 * sits between your Ctrl-C and the server, and lab 02's children are forked by the server itself.
 *
 * Make passes the variables given on its command line through the environment:
 *   PORT HOST BACKLOG PROTOCOL WORK_US   --port --host --backlog --protocol --work-us
 *   ROOT                                 --root (PROTOCOL=files: the directory served)
 *   QUIET (any value but 0/no/false)     --quiet
 *   SANDBOX (the same; SANDBOX=kill)     --sandbox (and --sandbox-deny kill)
 *   each lab's own `makeVariables`       e.g. lab 03's THREADS → --threads
 *   ARGS                                 any further flags, split at spaces (no quoting)
 * A variable that only other labs take is refused with one line (exit 2), not ignored.
 *
 * Usage: node dist/labs/run.js NN [FLAGS...]   (the Makefile's `lab-%` rule runs it without FLAGS)
 */

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitOnUserError, UserError } from '../shared/errors.js';
import { findLab, LABS } from './index.js';
import { labFlags } from './make-flags.js';

const name = process.argv[2] ?? '';
const info = findLab(name);
if (!info) {
  const what = name === '' ? 'which lab? make lab-NN' : `there is no lab ${name}`;
  exitOnUserError(`make lab-${name}`)(new UserError(`${what}; the labs are ${LABS.map((lab) => lab.id).join(', ')} (labs/index.ts)`));
} else {
  // The lab's entry reads its flags from process.argv as if it had been started by itself: make's
  // variables first, then whatever follows the lab's number here (the entry refuses what it does not take).
  const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), info.id, 'main.js');
  let flags: string[] = [];
  try {
    flags = labFlags(info, process.env);
  } catch (error) {
    exitOnUserError(`make lab-${name}`)(error);
  }
  process.argv = [process.argv[0]!, entry, ...flags, ...process.argv.slice(3)];
  await import(pathToFileURL(entry).href);
}
