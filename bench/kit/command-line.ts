/**
 * An experiment's command line, declared as data: each option's type, default, quick-run default
 * and range. The kit turns the declaration into yargs options (through shared/cli.ts's `strictly`:
 * an unknown flag or a bad value is one line on stderr and exit status 2) and the parsed flags
 * into typed settings, so no experiment casts yargs output. Every experiment also takes:
 *   --quick        short run, to check that everything works; writes to results/quick/
 *   --render-only  render the results file into Markdown without measuring
 *   --output, --markdown   where the JSON and the report go (default: by --quick)
 */

import path from 'node:path';
import type { Options } from 'yargs';
import { yargs } from '../../shared/yargs.js';
import { strictly } from '../../shared/cli.js';
import { UserError } from '../../shared/errors.js';
import { repoRoot } from '../../harness/launch.js';
import { reportPaths } from './report-file.js';

interface Described {
  readonly describe: string;
}
export interface NumberOption extends Described {
  readonly type: 'number';
  readonly default?: number;
  /** The default of a quick run, when it differs. */
  readonly quick?: number;
  readonly min?: number;
  readonly max?: number;
  /** The value must be above `min`, not equal to it. */
  readonly above?: boolean;
  readonly integer?: boolean;
}
export interface TextOption extends Described {
  readonly type: 'string';
  readonly default?: string;
  readonly choices?: readonly string[];
}
/** Several values, given as `--labs a b` or `--labs a,b`. */
export interface ListOption extends Described {
  readonly type: 'list';
  readonly default?: readonly string[];
  readonly quick?: readonly string[];
  readonly choices?: readonly string[];
}
/** Several whole numbers, given as `--rooms 10 100` or `--rooms 10,100`. */
export interface NumberListOption extends Described {
  readonly type: 'numbers';
  readonly default: readonly number[];
  readonly quick?: readonly number[];
  readonly min: number;
  readonly max: number;
}
export interface FlagOption extends Described {
  readonly type: 'boolean';
  readonly default?: boolean;
}
export type OptionSpec = NumberOption | TextOption | ListOption | NumberListOption | FlagOption;
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

type ValueOf<S> = S extends NumberOption
  ? S extends { default: number } | { quick: number } ? number : number | undefined
  : S extends NumberListOption
    ? readonly number[]
  : S extends ListOption
    ? S extends { default: readonly string[] } ? readonly string[] : readonly string[] | undefined
    : S extends FlagOption
      ? boolean
      : S extends { default: string } ? string : string | undefined;

export interface CommonSettings {
  readonly quick: boolean;
  readonly renderOnly: boolean;
  /** Absolute paths. */
  readonly output: string;
  readonly markdown: string;
  /** The command line as a reader would type it again, for the stamp. */
  readonly command: string;
}

/** The parsed command line: the common settings and each declared option, typed from its spec. */
export type Settings<O extends OptionSpecs> = CommonSettings & { readonly [K in keyof O]: ValueOf<O[K]> };

/** "http-connections" → "httpConnections". */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
/** The settings under camelCase names, as a results file records them. */
export type CamelSettings<O extends OptionSpecs> = CommonSettings & { readonly [K in keyof O & string as Camel<K>]: ValueOf<O[K]> };
export const camelSettings = <O extends OptionSpecs>(settings: Settings<O>): CamelSettings<O> =>
  Object.fromEntries(Object.entries(settings).map(([k, v]) => [k.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()), v])) as CamelSettings<O>;

const COMMON = {
  quick: { type: 'boolean', default: false, describe: 'short run to check that everything works (not figures to quote); writes to results/quick/' },
  'render-only': { type: 'boolean', default: false, describe: 'only render --output into --markdown, without measuring' },
  output: { type: 'string', describe: 'results file (JSON) [default: results/NAME.json; quick: results/quick/NAME.json]' },
  markdown: { type: 'string', describe: 'rendered report [default: results/NAME.md; quick: results/quick/NAME.md]' },
} satisfies Record<string, Options>;

function yargsOption(spec: OptionSpec): Options {
  const quick = 'quick' in spec && spec.quick !== undefined ? `; quick: ${String(spec.quick)}` : '';
  const shownDefault = spec.default === undefined ? '' : ` [default: ${String(spec.default)}${quick}]`;
  const describe = `${spec.describe}${shownDefault || (quick ? ` [${quick.slice(2)}]` : '')}`;
  if (spec.type === 'list' || spec.type === 'numbers') return { type: 'array', string: true, describe };
  if (spec.type === 'string') return { type: 'string', describe, ...(spec.choices ? { choices: [...spec.choices] } : {}) };
  return { type: spec.type, describe };
}

/** The problem with one number, or undefined when it is fine. */
export function numberProblem(name: string, value: unknown, rule: NumberOption): string | undefined {
  const min = rule.min ?? Number.NEGATIVE_INFINITY;
  const ok =
    typeof value === 'number' && Number.isFinite(value) && (rule.above ? value > min : value >= min) && (rule.max === undefined || value <= rule.max) && (!rule.integer || Number.isInteger(value));
  if (ok) return undefined;
  const kind = rule.integer ? 'whole number' : 'number';
  const range = rule.above && rule.min === 0 && rule.max === undefined ? `a positive ${kind}` : `a ${kind} from ${rule.min ?? '-∞'}${rule.max === undefined ? ' up' : ` to ${rule.max}`}`;
  return `--${name} must be ${range}, got ${String(value)}`;
}

function valueOf(name: string, spec: OptionSpec, given: unknown, quick: boolean): unknown {
  const items = given === undefined || !Array.isArray(given) ? undefined : given.flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean);
  if (spec.type === 'numbers') {
    if (items === undefined) return quick && spec.quick ? spec.quick : spec.default;
    if (items.every((item) => /^\d+$/.test(item) && Number(item) >= spec.min && Number(item) <= spec.max)) return items.map(Number);
    const bad = items.find((item) => !/^\d+$/.test(item) || Number(item) < spec.min || Number(item) > spec.max);
    throw new UserError(`--${name} takes whole numbers from ${spec.min} ${spec.max >= 1_000_000 ? 'up' : `to ${spec.max}`}, got ${bad}`);
  }
  if (spec.type === 'list') {
    const value = items ?? (quick && spec.quick ? spec.quick : spec.default);
    const unknown = value?.filter((v) => spec.choices && !spec.choices.includes(v));
    if (unknown?.length) throw new UserError(`--${name}: unknown ${JSON.stringify(unknown[0])} (choose from ${spec.choices!.join(', ')})`);
    return value;
  }
  if (spec.type === 'number') {
    if (given !== undefined) {
      const problem = numberProblem(name, given, spec);
      if (problem) throw new UserError(problem);
      return given;
    }
    return quick && spec.quick !== undefined ? spec.quick : spec.default;
  }
  return given ?? spec.default;
}

/** The experiments whose folder is not named after them (their report's name). */
const FOLDERS: Readonly<Record<string, string>> = { bench: 'servers', hardening: 'harden' };

/** Parses `args` (what the user typed after the script) into typed settings. */
export function parseSettings<O extends OptionSpecs>(experiment: string, about: string, specs: O, args: readonly string[]): Settings<O> {
  const options = Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, yargsOption(spec)]));
  const script = `node --import tsx bench/${FOLDERS[experiment] ?? experiment}/main.ts`;
  const parser = yargs([...args]).scriptName(script).usage(`$0 [options]\n\n${about}`).options(COMMON).options(options).help();
  const argv = strictly(parser, args).parseSync() as Record<string, unknown>;
  const quick = argv.quick === true;
  const paths = reportPaths(experiment, quick);
  const fromRoot = (file: unknown, fallback: string) => (typeof file === 'string' ? path.resolve(repoRoot, file) : fallback);
  const own = Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, valueOf(name, spec, argv[name], quick)]));
  return {
    ...own,
    quick,
    renderOnly: argv['render-only'] === true,
    output: fromRoot(argv.output, paths.json),
    markdown: fromRoot(argv.markdown, paths.markdown),
    command: process.env.EXPERIMENT_COMMAND ?? [script, ...args].join(' '),
  } as Settings<O>;
}

/** Paths as the report shows them: relative to the repository. */
export const relative = (file: string): string => path.relative(repoRoot, file);
