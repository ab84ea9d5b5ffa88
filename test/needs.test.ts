/**
 * A lab that needs a kernel interface this machine may refuse (`needs` in labs/index.ts: lab 07's
 * io_uring) is either run by every suite or, where it is refused, skipped by all of them; this is
 * the one test that says which, and checks that the lab itself agrees: it starts where the probe
 * says it can, and where it cannot it prints one line naming the cause and exits 2.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { runEntry, startLab, stopAllLabs } from '../harness/launch.js';
import { LABS } from '../labs/index.js';
import { stopCleanly } from './helpers/exchange.js';
import { UNMET } from './helpers/labs.js';

afterEach(async () => {
  await stopAllLabs();
});

describe.each(LABS.filter((lab) => lab.needs))('lab $id, which needs $needs', (lab) => {
  const cause = UNMET.get(lab.id);
  if (cause === undefined) {
    it(`runs here (${lab.needs} available), so every suite generates its cases`, async () => {
      const server = await startLab(lab.id, ['--quiet']);
      await stopCleanly(server);
    });
  } else {
    it(`is SKIPPED by every suite on this machine: ${cause}`, async () => {
      const result = await runEntry(lab.id, ['--port', '0']);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining(cause)]);
    });
  }
});
