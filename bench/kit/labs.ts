/**
 * The labs as a results file records them: what the registry (labs/index.ts) said about each lab
 * when it was measured. A report is rendered from these copies, never from today's registry, so an
 * old measurement keeps the descriptions it was made with.
 */

import { LABS, type LabInfo, type LabTraits } from '../../labs/index.js';

/** The registry's facts a report quotes (how to run a lab is not a report's business). */
export type LabDescription = Pick<LabInfo, 'id' | 'label' | 'model' | 'limit' | 'acceptedWait' | 'traits'>;

export function describeLab(lab: LabInfo): LabDescription {
  return { id: lab.id, label: lab.label, model: lab.model, ...(lab.limit ? { limit: lab.limit } : {}), acceptedWait: lab.acceptedWait, traits: lab.traits };
}

/** The registry's labs, in its order; only those in `ids` when given. */
export function describeLabs(ids?: readonly string[]): LabDescription[] {
  return LABS.filter((lab) => ids === undefined || ids.includes(lab.id)).map(describeLab);
}

/**
 * The one lab that queues clients only in the kernel (traits.kernelQueueOnly): the backlog sweep
 * runs it, since its accept queue is the one that fills. Undefined when no lab has the trait.
 */
export function kernelQueueLab<T extends { readonly traits: LabTraits }>(labs: readonly T[]): T | undefined {
  return labs.find((lab) => lab.traits.kernelQueueOnly);
}

/**
 * A lab that is one event loop and nothing more: no children, no pool, and it does not leave
 * clients in the kernel queue. The CPU-bound scenario compares every model with it (the first
 * such lab in the registry's order).
 */
export function oneEventLoop(traits: LabTraits): boolean {
  return !traits.children && !traits.pool && !traits.kernelQueueOnly;
}

/** A lab's label as the results file recorded it ("04 evented"), or its id when the file has none. */
export function labLabel(labs: readonly LabDescription[], id: string): string {
  const [lab, variant] = id.split('@');
  const label = labs.find((l) => l.id === lab)?.label ?? lab!;
  return variant ? `${label} (${variant})` : label;
}
