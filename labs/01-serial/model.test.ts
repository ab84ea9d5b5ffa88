/**
 * Lab 01's model, shown with its real entry over real TCP: one client at a time, the next waiting in the kernel accept queue. The tests every lab
 * shares are in test/labs.test.ts; this is the one that makes it this model.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { listenQueue } from '../../harness/sockets.js';
import { roundTrip, stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';
import { eventually } from '../../test/helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

describe.each(labCases((lab) => lab.id === '01-serial'))('lab %s', ({ start }) => {
  it('shows its model: one client at a time, the next waiting in the kernel accept queue', async () => {
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await start(['--quiet', ...SANDBOXED]);
    const first = await connect(lab.port);
    expect(await roundTrip(first, Buffer.from('one\n'))).toBe('one\n');
    // The kernel completes client 2's handshake on its own: connect succeeds while the server is
    // busy with client 1, and client 2 waits in the listening socket's accept queue.
    const second = await connect(lab.port);
    second.socket.write('two\n');
    await eventually(() => ((listenQueue(lab.port)?.acceptQueueDepth ?? 0) >= 1 ? true : undefined), 10_000);
    // Client 1 is still served, and only client 1.
    expect(await roundTrip(first, Buffer.from('still one\n'))).toBe('still one\n');
    expect(second.received().length).toBe(0);
    first.socket.end();
    await first.waitForEnd();
    // Now the server accepts client 2 and echoes what waited in the kernel for it.
    expect((await second.waitForBytes(4)).toString()).toBe('two\n');
    expect(listenQueue(lab.port)?.acceptQueueDepth).toBe(0);
    second.socket.end();
    await second.waitForEnd();
    await stopCleanly(lab);
  });
});
