/**
 * Robust suite, echo integrity: many clients with large payloads (case 1), half-close (case 4),
 * and clients that reset mid-stream or right after connecting (case 9). Every lab's real entry
 * runs as a child process on a free port; every case ends with the nothing-lost check.
 */

import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { labCases, servingCases } from '../helpers/labs.js';
import { closeAllClients } from '../helpers/tcp.js';
import { randomChunks, seededRandom } from '../helpers/util.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { NothingLost, stopCleanly } from './helpers/nothing-lost.js';
import { KiB, MiB, randomBytes } from './helpers/payload.js';

afterEach(async () => {
  destroyAllEchoClients();
  closeAllClients();
  await stopAllLabs();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

// Cases 1 and 4 are about serving a connection once accepted: the variants that change only how a
// connection is accepted would run the same code again (servingCases). Case 9's 500 connections,
// reset before or as they are accepted, are for every variant.
describe.each(servingCases())('lab %s', ({ start }) => {
  it('case 1: 12 clients at once, 3 MiB each in random chunks of 1 B – 64 KiB: exact echo', { timeout: 120_000 }, async () => {
    const lab = await start(['--quiet']);
    const guard = await NothingLost.begin(lab);
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        // Odd sizes, so no payload is a whole number of chunks or pages.
        const payload = randomBytes(3 * MiB + i * 1001, 0xc0de + i);
        const client = await guard.connect();
        await client.sendAll(randomChunks(payload, seededRandom(i), 1, 64 * KiB));
        client.end();
        await client.waitForClose(90_000);
        expect(client.closedCleanly, `client ${i} closed cleanly`).toBe(true);
        expect(client.received, `client ${i} bytes`).toBe(payload.length);
        expect(client.receivedDigest(), `client ${i} checksum`).toBe(sha256(payload));
      }),
    );
    await guard.verify();
    await stopCleanly(lab);
  });

  it('case 4: half-close: N bytes then FIN get all N back then FIN; 1,000 small messages then an immediate FIN lose nothing', async () => {
    const lab = await start(['--quiet']);
    const guard = await NothingLost.begin(lab);

    const payload = randomBytes(MiB + 17, 4);
    const whole = await guard.connect();
    await whole.sendAll([payload.subarray(0, 1000), payload.subarray(1000, 700_000), payload.subarray(700_000)]);
    whole.end();
    await whole.waitForEnd();
    expect(whole.finReceived, 'server FIN after the echo').toBe(true);
    expect(whole.received).toBe(payload.length);
    expect(whole.receivedDigest()).toBe(sha256(payload));
    await whole.waitForClose();

    // Five connections at once, each 1,000 writes in one go and the FIN right behind them: the
    // FIN reaches the server while most messages are still unread, and must not cut them off.
    await Promise.all(
      Array.from({ length: 5 }, async (_, c) => {
        const client = await guard.connect({ keep: true });
        const messages = Array.from({ length: 1000 }, (_, i) => Buffer.from(`connection ${c} message ${i}${'.'.repeat(i % 37)}\n`));
        for (const message of messages) void client.send(message);
        client.end();
        await client.waitForClose();
        expect(client.closedCleanly).toBe(true);
        expect(client.receivedBytes.equals(Buffer.concat(messages)), `connection ${c}: every message, in order`).toBe(true);
      }),
    );
    await guard.verify();
    await stopCleanly(lab);
  });
});

describe.each(labCases())('lab %s', ({ start }) => {
  it('case 9: a client reset in the middle of a large echo, then 500 connect-then-reset in a row: no crash, no fd leak', { timeout: 120_000 }, async () => {
    const lab = await start(['--quiet']);
    const guard = await NothingLost.begin(lab);

    // The victim streams 8 MiB and resets once 1 MiB has come back; a healthy client runs beside
    // it (lab 01: behind it, in the accept queue) and must get its exact echo.
    const victim = await EchoClient.connect(lab.port);
    const healthy = await guard.connect();
    const block = randomBytes(64 * KiB, 9);
    const victimSending = victim.sendAll(Array.from({ length: 128 }, () => block));
    await victim.waitForReceived(MiB);
    victim.reset();
    await victimSending;
    await victim.waitForClose();
    const payload = randomBytes(2 * MiB, 10);
    await healthy.sendAll(randomChunks(payload, seededRandom(10), 1, 64 * KiB));
    healthy.end();
    await healthy.waitForClose(60_000);
    expect(healthy.closedCleanly).toBe(true);
    expect(healthy.receivedDigest()).toBe(sha256(payload));

    for (let i = 0; i < 500; i++) {
      const client = await EchoClient.connect(lab.port);
      client.reset();
      await client.closed;
    }
    await guard.verify();
    await stopCleanly(lab);
  });
});
