/**
 * Lab 02's model, shown with its real entry over real TCP: one child process per open client, none left behind. The tests every lab
 * shares are in test/labs.test.ts; this is the one that makes it this model.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { childPids, stat } from '../../harness/processes.js';
import { roundTrip, stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';
import { eventually } from '../../test/helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

describe.each(labCases((lab) => lab.id === '02-process-per-connection'))('lab %s', ({ start }) => {
  it('shows its model: one child process per open client, none left behind', async () => {
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await start(['--quiet', ...SANDBOXED]);
    const live = () => childPids(lab.pid).filter((pid) => stat(pid)?.state !== 'Z');
    const clients = await Promise.all([1, 2, 3].map(() => connect(lab.port)));
    for (const [i, client] of clients.entries()) {
      expect(await roundTrip(client, Buffer.from(`client ${i}\n`))).toBe(`client ${i}\n`);
    }
    // Every open client has its own process, and each is a child of the server.
    expect(live()).toHaveLength(3);
    expect(new Set(live()).size).toBe(3);
    clients[0]!.socket.end();
    await clients[0]!.waitForEnd();
    await eventually(() => (live().length === 2 ? true : undefined), 10_000);
    for (const client of clients.slice(1)) client.socket.end();
    // All children exit and are reaped: no process is left, not even a zombie.
    await eventually(() => (childPids(lab.pid).length === 0 ? true : undefined), 10_000);
    await stopCleanly(lab);
  });
});
