/**
 * Which variants of each lab a scenario runs. Labs 05 and 06 have three variants each; running
 * every variant everywhere would take the full run well past 15 minutes on a 2-core machine. The
 * rule follows from what a scenario can show, not from lab ids:
 *   - pinned to one core (every scenario but the CPU-bound one), a multi-core lab's variants
 *     (ways of spreading over cores) cannot differ: its first variant stands for it;
 *   - a one-core lab's variants (its multiplexer, its trigger mode) differ exactly where the loop
 *     itself is the cost: the raw echo and the idle-connections scenario run them all;
 *   - the CPU-bound scenario runs every variant of a multi-core lab, one of each other lab;
 *   - elsewhere (HTTP, churn, capacity) one variant per lab;
 *   - the plain-Node reference runs where it splits a cost per round trip: the raw echo only;
 *   - a quick run (a check that everything works) runs the first variant of each lab everywhere
 *     but in the idle-connections scenario, whose lesson is the variants.
 */

import { PLAIN_NODE_ID } from '../results.js';
import type { BenchSettings } from '../options.js';
import type { TargetSpec } from '../targets.js';

const ONE_CORE =
  "the servers are pinned to one core here, where a multi-core lab's variants (how it spreads over cores) cannot differ: its first variant stands for it";
const RUN_TIME = 'one variant per lab in this scenario, to keep the full run under 15 minutes';
const QUICK_RUN = 'a quick run measures one variant per lab here';

/** Raw echo and idle connections: every variant of a one-core lab, the first of a multi-core one. */
export function oneCoreVariants(target: TargetSpec, settings: BenchSettings): string | undefined {
  if (settings.quick && target.variantIndex > 0) return QUICK_RUN;
  return target.multiCore && target.variantIndex > 0 ? ONE_CORE : undefined;
}

/** Idle connections: every variant of a one-core lab, in a quick run too. */
export function idleVariants(target: TargetSpec): string | undefined {
  return target.multiCore && target.variantIndex > 0 ? ONE_CORE : undefined;
}

/** The CPU-bound scenario: every variant of a multi-core lab, the first of any other. */
export function multiCoreVariants(target: TargetSpec, settings: BenchSettings): string | undefined {
  if (settings.quick && target.variantIndex > 0) return QUICK_RUN;
  return !target.multiCore && target.variantIndex > 0 ? RUN_TIME : undefined;
}

/** HTTP, churn and capacity: the first variant of every lab, and no plain-Node row. */
export function firstVariant(target: TargetSpec): string | undefined {
  if (target.id === PLAIN_NODE_ID) return 'the plain-Node reference splits the raw echo\'s cost per round trip; elsewhere it is left out to keep the run short';
  return target.variantIndex > 0 ? RUN_TIME : undefined;
}
