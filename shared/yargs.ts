/**
 * yargs, as every command line of the project loads it: its CommonJS build, through require.
 *
 * yargs 17 ships two builds. The ES module one wraps --help with a minimal word-blind wrapper
 * (cliui's string-utils), which breaks "chat:" into "chat" and ":" at the column edge; the
 * CommonJS one wraps with wrap-ansi, at word boundaries. It also loads in about a quarter of the
 * time (about 40 ms against 160 ms for the ES build of yargs 18 on the 2-core test machine), and
 * a lab's entry loads it at every start: the test suite starts labs about 800 times.
 */

import { createRequire } from 'node:module';
import type { Argv } from 'yargs';

const require = createRequire(import.meta.url);

/** yargs(args): a parser of `args`, as `import yargs from 'yargs'` gives it. */
export const yargs = require('yargs/yargs') as (args: readonly string[]) => Argv;
/** process.argv without the node binary and the script. */
export const { hideBin } = require('yargs/helpers') as { hideBin: (argv: string[]) => string[] };
