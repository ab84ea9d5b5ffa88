/**
 * Lab 04's model, shown with its real entry over real TCP: many clients at once in one process, no children. The tests every lab
 * shares are in test/labs.test.ts; this is the one that makes it this model.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { childPids, treeUsage } from '../../harness/processes.js';
import { roundTrip, stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

describe.each(labCases((lab) => lab.id === '04-evented'))('lab %s', ({ start }) => {
  it('shows its model: many clients at once in one process, no children', async () => {
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await start(['--quiet', ...SANDBOXED]);
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(lab.port)));
    // All 50 are open at the same time, and every one of them is served.
    await Promise.all(
      clients.map(async (client, i) => {
        expect(await roundTrip(client, Buffer.from(`hello from ${i}\n`))).toBe(`hello from ${i}\n`);
      }),
    );
    expect(childPids(lab.pid)).toEqual([]);
    expect(treeUsage(lab.pid).processes).toBe(1);
    for (const client of clients) client.socket.end();
    await stopCleanly(lab);
  });
});
