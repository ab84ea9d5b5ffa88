/**
 * TRANSITION ONLY: the command line of experiments not yet on kit/experiment.ts; deleted once all are.
 *
 * The command line every experiment shares, in one style (yargs through shared/cli.ts's
 * `strictly`: an unknown flag or a bad value is one line on stderr and exit status 2):
 *   --quick        short run, to check that everything works; writes to results/quick/
 *   --render-only  render the results file into Markdown without measuring
 *   --output, --markdown   where the JSON and the report go (default: by --quick, see reportPaths)
 * plus the experiment's own options, each checked by `checkNumber`.
 */

import path from 'node:path';
import yargs, { type Argv, type Options } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { strictly } from '../../shared/cli.js';
import { UserError } from '../../shared/errors.js';
import { repoRoot } from '../lib/launch.js';
import { reportPaths } from './report-file.js';

export interface CommonSettings {
  readonly quick: boolean;
  readonly renderOnly: boolean;
  /** Absolute paths. */
  readonly output: string;
  readonly markdown: string;
  /** The command line as a reader would type it again, for the stamp. */
  readonly command: string;
}

const COMMON_OPTIONS = {
  quick: { type: 'boolean', default: false, describe: 'short run to check that everything works (not figures to quote); writes to results/quick/' },
  'render-only': { type: 'boolean', default: false, describe: 'only render --output into --markdown, without measuring' },
  output: { type: 'string', describe: 'results file (JSON) [default: results/NAME.json; quick: results/quick/NAME.json]' },
  markdown: { type: 'string', describe: 'rendered report [default: results/NAME.md; quick: results/quick/NAME.md]' },
} satisfies Record<string, Options>;

/** The experiment's parser: its script name and usage, the common options and its own. */
export function experimentParser(experiment: string, usage: string, args: readonly string[]): Argv {
  return yargs([...args]).scriptName(`node --import tsx bench/${experiment}/main.ts`).usage(`$0 [options]\n\n${usage}`).options(COMMON_OPTIONS).help();
}

/**
 * Parses with the project's strict rules; every problem becomes a UserError (one line, exit 2).
 * `args` are what the parser was given, for naming an unknown flag as it was typed.
 */
export function parseStrictly<T>(parser: Argv<T>, args: readonly string[] = hideBin(process.argv)): T {
  return strictly(parser, args).parseSync() as T;
}

/** The common settings from parsed flags. `make` passes the command it ran in EXPERIMENT_COMMAND. */
export function commonSettings(experiment: string, argv: Record<string, unknown>, args: readonly string[] = hideBin(process.argv)): CommonSettings {
  const quick = argv.quick === true;
  const paths = reportPaths(experiment, quick);
  const fromRoot = (file: unknown, fallback: string) => (typeof file === 'string' ? path.resolve(repoRoot, file) : fallback);
  return {
    quick,
    renderOnly: argv['render-only'] === true,
    output: fromRoot(argv.output, paths.json),
    markdown: fromRoot(argv.markdown, paths.markdown),
    command: process.env.EXPERIMENT_COMMAND ?? [`node --import tsx bench/${experiment}/main.ts`, ...args].join(' '),
  };
}

export interface NumberRule {
  readonly min: number;
  readonly max?: number;
  /** The value must be above `min`, not equal to it. */
  readonly above?: boolean;
  readonly integer?: boolean;
}

/** The problem with one numeric flag, or undefined when it is fine (or absent). */
function checkNumber(argv: Record<string, unknown>, name: string, rule: NumberRule): string | undefined {
  const value = argv[name];
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (rule.above ? value > rule.min : value >= rule.min) &&
    (rule.max === undefined || value <= rule.max) &&
    (!rule.integer || Number.isInteger(value));
  if (ok) return undefined;
  const kind = rule.integer ? 'whole number' : 'number';
  const range = rule.above && rule.min === 0 && rule.max === undefined ? `a positive ${kind}` : `a ${kind} from ${rule.min}${rule.max === undefined ? ' up' : ` to ${rule.max}`}`;
  return `--${name} must be ${range}, got ${String(value)}`;
}

/** Applies `checkNumber` to each rule, throwing the first problem as a UserError (for yargs' check). */
export function checkNumbers(argv: Record<string, unknown>, rules: Readonly<Record<string, NumberRule>>): true {
  for (const [name, rule] of Object.entries(rules)) {
    const problem = checkNumber(argv, name, rule);
    if (problem) throw new UserError(problem);
  }
  return true;
}

/** Paths as the report shows them: relative to the repository. */
export const relative = (file: string): string => path.relative(repoRoot, file);
