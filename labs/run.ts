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
 *
 * Usage: node dist/labs/run.js NN   (what the Makefile's `lab-%` rule runs)
 */

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitOnUserError, UserError } from '../shared/errors.js';
import { findLab, LABS } from './index.js';
import { labFlags } from './make-flags.js';

const name = process.argv[2] ?? '';
const info = findLab(name);
if (!info) {
  exitOnUserError(`make lab-${name}`)(
    new UserError(`there is no lab ${name}; the labs are ${LABS.map((lab) => lab.id).join(', ')} (labs/index.ts)`),
  );
} else {
  // The lab's entry reads its flags from process.argv as if it had been started by itself.
  const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), info.id, 'main.js');
  process.argv = [process.argv[0]!, entry, ...labFlags(info, process.env)];
  await import(pathToFileURL(entry).href);
}
