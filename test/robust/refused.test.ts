/**
 * Robust suite, what a client beyond --max-conns sees (the README's limits table says it): the
 * server accepts it and closes it at once, so a client whose bytes were already waiting in the
 * kernel gets a reset, and one that had sent nothing gets a clean end of stream with nothing in
 * it. Generated for the labs that hold several clients (lab 01's queue is the kernel's backlog).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startLab, stopAllLabs } from '../../harness/launch.js';
import { connectionQueues } from '../../harness/sockets.js';
import { labVariantsHere } from '../helpers/labs.js';
import { eventually } from '../helpers/util.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { stopCleanly } from './helpers/nothing-lost.js';

/** The scheduler state of every thread of `pid` (R, S, T, ...), from /proc/PID/task/TID/stat. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  });
}

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

describe.each(labVariantsHere((lab) => !lab.traits.kernelQueueOnly))('lab $title', ({ lab: info, variant }) => {
  it('beyond --max-conns: a client that had sent bytes sees a reset, one that had sent nothing a clean empty close', { timeout: 60_000 }, async () => {
    const lab = await startLab(info.id, [...variant.args, '--quiet', '--max-conns', '1']);
    const held = await EchoClient.connect(lab.port, { keep: true });
    await held.send(Buffer.from('held\n'));
    await held.waitForReceived(5);

    // The server is stopped while the two connect, so the first one's line is in the kernel,
    // unread, when the server accepts and closes it. (Lab 02: the parent stops; its child, which
    // serves the held client, runs on.)
    process.kill(lab.pid, 'SIGSTOP');
    // A stop reaches each thread of the process in turn: until every thread is stopped, a loop
    // still running on the other core could accept the two (lab 06's loops are threads).
    await eventually(() => (threadStates(lab.pid).every((state) => state === 'T') ? true : undefined), 10_000, 'every thread to stop');
    let talker: EchoClient;
    let silent: EchoClient;
    try {
      talker = await EchoClient.connect(lab.port);
      silent = await EchoClient.connect(lab.port);
      await talker.send(Buffer.from('let me in\n'));
      await eventually(() => ((connectionQueues(lab.port, talker.socket.localPort!)?.serverUnread ?? 0) > 0 ? true : undefined), 10_000, 'the line to wait in the kernel');
    } finally {
      process.kill(lab.pid, 'SIGCONT');
    }
    await Promise.all([talker.waitForClose(10_000), silent.waitForEnd(10_000)]);
    expect({ received: talker.received, error: talker.error }, 'the client that had sent a line').toEqual({ received: 0, error: 'ECONNRESET' });
    expect({ received: silent.received, error: silent.error, finReceived: silent.finReceived }, 'the client that had sent nothing').toEqual({
      received: 0,
      error: undefined,
      finReceived: true,
    });

    // The held client never noticed.
    await held.send(Buffer.from('still here\n'));
    await held.waitForReceived(16);
    expect(held.receivedBytes.toString()).toBe('held\nstill here\n');
    held.end();
    await held.waitForClose();
    await stopCleanly(lab);
  });
});
