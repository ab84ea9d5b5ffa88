/**
 * The labs a suite runs against, from the registry (labs/index.ts): one case per lab and
 * variant, with its traits and a start function that adds the variant's flags. Suites pick the
 * cases that apply with a trait filter, so no test is ever generated only to be skipped, and a new
 * lab is tested by adding its registry entry.
 */

import { labEntry, runEntry, startLab, type Launch, type LabProcess } from '../../harness/launch.js';
import { LABS, labVariants, type LabInfo, type LabTraits, type LabVariant } from '../../labs/index.js';
import { unmetNeed } from '../../shared/needs.js';
import { sandboxUnavailable } from '../../shared/sandbox.js';

/**
 * The labs this machine cannot run, each with the one line that says why (a lab's `needs` in the
 * registry, e.g. io_uring refused by a seccomp filter). Their cases are not generated at all;
 * test/needs.test.ts is the one named test that says so, and checks the lab says it too.
 */
export const UNMET: ReadonlyMap<string, string> = new Map(
  (await Promise.all(LABS.map(async (lab) => [lab.id, await unmetNeed(lab)] as const))).filter((entry): entry is readonly [string, string] => entry[1] !== undefined),
);

/** labVariants (labs/index.ts) without the labs this machine cannot run (UNMET). */
export function labVariantsHere(filter: (lab: LabInfo) => boolean = () => true): ReturnType<typeof labVariants> {
  return labVariants((lab) => !UNMET.has(lab.id) && filter(lab));
}

export interface LabCase {
  /** For test titles: the lab's id, and its variant's name when it has one. */
  readonly title: string;
  readonly id: string;
  readonly info: LabInfo;
  readonly traits: LabTraits;
  readonly variant: LabVariant;
  /**
   * How many clients it serves at once while the rest wait in the kernel's accept queue: 1 where
   * the kernel's queue is the only queue (lab 01), a pool's size (lab 08 prethreaded); undefined
   * where every client is served at once, up to --max-conns.
   */
  readonly servedAtOnce: number | undefined;
  /** Starts the lab's real entry on a free port with the variant's flags, then `args`. */
  start(args?: string[], env?: NodeJS.ProcessEnv): Promise<LabProcess>;
  /** Runs the entry to completion (bad flags, --help) with the variant's flags, then `args`. */
  run(args: string[]): Promise<Launch>;
  /** The command line to start the entry with `args` (for a wrapper such as prlimit). */
  command(args: string[]): string[];
  /** The title, so that `describe.each(labCases())('lab %s', …)` names each lab plainly. */
  toString(): string;
}

/** Every (lab, variant) the registry lists that runs here, or only those whose lab passes `applies`. */
export function labCases(applies: (lab: LabInfo) => boolean = () => true): LabCase[] {
  return labVariantsHere(applies).map(({ lab, variant, title }) => ({
    title,
    id: lab.id,
    info: lab,
    traits: lab.traits,
    variant,
    servedAtOnce: lab.traits.kernelQueueOnly ? 1 : variant.servedAtOnce,
    start: (args = [], env = {}) => startLab(lab.id, [...variant.args, ...args], env),
    run: (args) => runEntry(lab.id, [...variant.args, ...args]),
    command: (args) => [process.execPath, labEntry(lab.id), ...variant.args, ...args],
    toString: () => title,
  }));
}

/**
 * labCases without the variants that change only how a connection is accepted (LabVariant's
 * acceptOnly): for the families about serving a connection once it is accepted (bytes, memory,
 * the protocols), where such a variant would run the same code again.
 */
export function servingCases(applies: (lab: LabInfo) => boolean = () => true): LabCase[] {
  return labCases(applies).filter((labCase) => labCase.variant.acceptOnly !== true);
}

/**
 * Only the first variant the registry lists for each lab (its default configuration), for the
 * families whose behaviour no variant flag can change: command-line parsing (robust case 13),
 * and the idle and lifetime limits, which every variant of a lab checks with the same code (case
 * 5). The families about serving an accepted connection run servingCases; the rest run every
 * variant: they exercise the I/O paths a variant changes (how a lab waits, accepts, reads and
 * writes). Each variant of lab 05, 06 or 07 costs a robust suite run.
 */
export function defaultVariantCases(applies: (lab: LabInfo) => boolean = () => true): LabCase[] {
  const seen = new Set<string>();
  return labCases(applies).filter((labCase) => !seen.has(labCase.id) && seen.add(labCase.id) !== undefined);
}

/**
 * Flags that run a lab under its seccomp allow-list, strictly (a call off the list kills it), for
 * the one representative case of each lab's own suite that runs sandboxed (labs/NN/model.test.ts);
 * empty where this kernel has no seccomp filters (test/sandbox.test.ts says so once).
 */
export const SANDBOXED: readonly string[] = sandboxUnavailable() === undefined ? ['--sandbox', '--sandbox-deny', 'kill'] : [];
