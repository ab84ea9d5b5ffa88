/**
 * Lab 03's model, shown with its real entry over real TCP: never more tasks running at once than --threads. The tests every lab
 * shares are in test/labs.test.ts; this is the one that makes it this model.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { httpRequest, httpResponse, roundTrip, stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

describe.each(labCases((lab) => lab.id === '03-worker-pool'))('lab %s', ({ start }) => {
  it('shows its model: never more tasks running at once than --threads', async () => {
    const threads = 2;
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await start(['--protocol', 'http', '--work-us', '20000', '--threads', String(threads), '--quiet', ...SANDBOXED]);
    const clients = await Promise.all(Array.from({ length: 6 }, () => connect(lab.port)));
    await Promise.all(
      clients.map(async (client, i) => {
        for (let r = 0; r < 3; r++) {
          const expected = httpResponse(`c${i}r${r}`);
          expect(await roundTrip(client, httpRequest('/', `c${i}r${r}`), expected.length)).toBe(expected);
        }
      }),
    );
    for (const client of clients) client.socket.end();
    await stopCleanly(lab);
    // The pool reports on shutdown how many tasks ran and the most that ever ran at once.
    const summary = /pool: (\d+) tasks run, at most (\d+) at once on (\d+) threads?/.exec(lab.output().stdout);
    expect(summary, lab.output().stdout).not.toBeNull();
    const [, tasks, peak, size] = summary!.map(Number);
    expect(tasks).toBe(18);
    expect(size).toBe(threads);
    // Six clients kept both threads busy, but never a third task at once.
    expect(peak).toBe(threads);
  });
});
