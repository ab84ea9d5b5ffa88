/** The three labs this experiment compares, found by what the registry says they are, never by id. */

import { UserError } from '../../shared/errors.js';
import { LABS, type LabInfo } from '../../labs/index.js';
import { oneEventLoop } from '../kit/labs.js';

/** The labs this experiment needs, found by what the registry says they are (never by id). */
export function findLabs(): { loops: LabInfo; oneLoop: LabInfo; pool: LabInfo } {
  // Lab 06: the lab whose variants are balance policies and whose cores flag sets its loops.
  const loops = LABS.find((lab) => lab.coresFlag === '--workers' && lab.variants.some((v) => v.args.includes('--balance')));
  // Lab 04: the first lab that is one event loop and nothing more, using one core.
  const oneLoop = LABS.find((lab) => oneEventLoop(lab.traits) && lab.coresFlag === undefined);
  // Lab 03: the pool of threads, with its own cores flag.
  const pool = LABS.find((lab) => lab.traits.pool && lab.coresFlag !== undefined);
  if (!loops || !oneLoop || !pool) throw new UserError('labs/index.ts lacks a lab this experiment compares (a loop per core, one event loop, a worker pool)');
  return { loops, oneLoop, pool };
}
