/**
 * Robust suite, faults inside the server and shutdown: a child killed mid-stream and clients that
 * leave before the handoff (case 10, process per connection), a pool task that throws (case 11,
 * worker pool), and SIGTERM with transfers in flight or with a client that never reads (case 12).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { labCases } from '../helpers/labs.js';
import { eventually, randomChunks, seededRandom } from '../helpers/util.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { recordMeasurement } from './helpers/measure.js';
import { NothingLost, stopCleanly, waitForExit } from './helpers/nothing-lost.js';
import { connectionQueues } from '../../harness/sockets.js';
import { isAlive, liveChildren } from './helpers/observe.js';
import { KiB, MiB, randomBytes, repeatedBlocks } from './helpers/payload.js';

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

/** The pool's test-only switch (labs/03-worker-pool/test-hooks.ts): a job containing this marker throws. */
const FAIL_MARKER_ENV = 'IOLAB_TEST_TASK_FAIL_MARKER';

/** The child serving `client`, from lab 02's "client ADDR handed to child pid N" line. */
async function childServing(lab: LabProcess, client: EchoClient): Promise<number> {
  const line = await lab.waitForLine(new RegExp(`client 127\\.0\\.0\\.1:${client.socket.localPort} handed to child pid (\\d+)`), 10_000);
  return Number(/child pid (\d+)/.exec(line)![1]);
}

// Case 10 applies where each connection has a child process of its own.
describe.each(labCases((lab) => lab.traits.children))('lab %s', ({ start }) => {
  it(
    'case 10: SIGKILL of a child mid-stream closes only its client, leaves no zombie; clients that leave before the handoff are handled',
    { timeout: 90_000 },
    async () => {
      // Not --quiet: the parent's log says which child serves which client, and reports the kill.
      const lab = await start([]);
      const guard = await NothingLost.begin(lab);
      const survivors = await Promise.all([0, 1].map(() => guard.connect()));
      const victim = await EchoClient.connect(lab.port, { keep: true });
      const payloads = [0, 1].map((i) => randomBytes(4 * MiB, 100 + i));
      const victimPayload = randomBytes(4 * MiB, 102);
      // Every client is in mid-stream: its first 256 KiB have come back.
      await Promise.all(
        [...survivors, victim].map(async (client, i) => {
          await client.send((payloads[i] ?? victimPayload).subarray(0, 256 * KiB));
          await client.waitForReceived(256 * KiB);
        }),
      );
      const victimPid = await childServing(lab, victim);
      expect(liveChildren(lab.pid)).toContain(victimPid);
      process.kill(victimPid, 'SIGKILL');

      await victim.waitForEnd(10_000);
      const echoed = victim.receivedBytes;
      expect(victimPayload.subarray(0, echoed.length).equals(echoed), 'the killed child echoed a clean prefix').toBe(true);
      // The parent notes the death on stderr, and reaps the child.
      await eventually(() => (new RegExp(`child ${victimPid} serving .* ended with SIGKILL`).test(lab.output().stderr) ? true : undefined), 10_000, 'the parent to report the kill');
      expect(isAlive(victimPid), 'the killed child is reaped, not left a zombie').toBe(false);

      await Promise.all(
        survivors.map(async (client, i) => {
          await client.sendAll(randomChunks(payloads[i]!.subarray(256 * KiB), seededRandom(i), 1, 64 * KiB));
          client.end();
          await client.waitForClose(60_000);
          expect(client.closedCleanly, `survivor ${i} served to the end`).toBe(true);
        }),
      );

      // Clients that leave before their child is even running: 20 that reset at once, and 20
      // that send a line and their FIN at once, which must still get the line back.
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const client = await EchoClient.connect(lab.port);
          client.reset();
        }),
      );
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const client = await guard.connect();
          await client.send(Buffer.from(`early ${i}\n`));
          client.end();
          await client.waitForClose(60_000);
          expect(client.closedCleanly, `early client ${i}`).toBe(true);
        }),
      );
      await guard.verify();
      await stopCleanly(lab);
    },
  );
});

// Case 11 applies where the work runs on a pool of worker threads.
describe.each(labCases((lab) => lab.traits.pool))('lab %s', ({ start }) => {
  it(
    'case 11: a task that throws (test-only switch) fails only its connection; the pool goes on at full size',
    { timeout: 90_000 },
    async () => {
      const marker = 'PLEASE-FAIL-THIS-TASK';
      const threads = 2;
      const lab = await start(['--threads', String(threads), '--work-us', '20000'], { [FAIL_MARKER_ENV]: marker });
      const guard = await NothingLost.begin(lab);

      // One round trip at a time: so far never more than one task at once.
      const steady = await guard.connect({ keep: true });
      let expected = '';
      const roundTrip = async (client: EchoClient, line: string) => {
        const before = client.received;
        await client.send(Buffer.from(line));
        await client.waitForReceived(before + line.length);
      };
      for (let i = 0; i < 3; i++) {
        await roundTrip(steady, `steady ${i}\n`);
        expected += `steady ${i}\n`;
      }

      const victim = await EchoClient.connect(lab.port, { keep: true });
      await victim.send(Buffer.from(`${marker}\n`));
      await victim.waitForEnd(10_000);
      expect(victim.received, 'the failed task has no reply').toBe(0);
      await lab.waitForLine(/disconnected \(work failed: task failed on purpose/, 10_000);

      await roundTrip(steady, 'still here\n');
      expected += 'still here\n';
      expect(steady.receivedBytes.toString()).toBe(expected);
      steady.end();
      await steady.waitForClose();

      // Full size: six clients at once keep both threads busy (20 ms of work per chunk).
      const crowd = await Promise.all(Array.from({ length: 6 }, () => guard.connect()));
      await Promise.all(
        crowd.map(async (client, c) => {
          for (let r = 0; r < 3; r++) await roundTrip(client, `client ${c} round ${r}\n`);
          client.end();
          await client.waitForClose();
          // Byte counts alone would pass a server that resets a client after its last echo.
          expect(client.closedCleanly, `crowd client ${c} closed cleanly (FIN both ways, no reset)`).toBe(true);
        }),
      );
      await guard.verify();
      await stopCleanly(lab);
      const summary = /pool: (\d+) tasks run, at most (\d+) at once on (\d+) threads/.exec(lab.output().stdout);
      expect(summary, lab.output().stdout).not.toBeNull();
      expect(Number(summary![3])).toBe(threads);
      // Before the failure nothing ever ran two tasks at once; after it, both threads did.
      expect(Number(summary![2]), 'most tasks at once, after the failure').toBe(threads);
    },
  );
});

describe.each(labCases())('lab %s', ({ id, servedAtOnce, start }) => {

  it('case 12: SIGTERM with 20 transfers in flight: new connections refused at once, in-flight echoes complete, exit 0 within the deadline', { timeout: 120_000 }, async () => {
    const shutdownTimeoutMs = 20_000;
    const lab = await start(['--quiet', '--shutdown-timeout', String(shutdownTimeoutMs / 1000)]);
    const guard = await NothingLost.begin(lab);
    const before = liveChildren(lab.pid);
    const clients = await Promise.all(Array.from({ length: 20 }, () => guard.connect()));
    const payloads = clients.map((_, i) => randomBytes(2 * MiB + i, 120 + i));
    // Every transfer is under way. Lab 01 serves one of them (lab 08's pool, one per thread); the rest wait in the accept queue.
    for (const [i, client] of clients.entries()) void client.send(payloads[i]!.subarray(0, 256 * KiB));
    await eventually(
      () => (clients.filter((client) => client.received >= 64 * KiB).length === Math.min(20, servedAtOnce ?? 20) ? true : undefined),
      60_000,
      'the transfers to be in flight',
    );
    const inFlight = clients.filter((client) => client.received > 0);
    const children = liveChildren(lab.pid);

    const termAt = performance.now();
    lab.child.kill('SIGTERM');
    await lab.waitForLine(/SIGTERM: no longer accepting/, 10_000);
    await expect(EchoClient.connect(lab.port), 'a new connection after SIGTERM').rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await Promise.all(
      clients.map(async (client, i) => {
        await client.sendAll(randomChunks(payloads[i]!.subarray(256 * KiB), seededRandom(i), 1, 64 * KiB));
        client.end();
        await client.waitForClose(60_000);
      }),
    );
    const { code, signal } = await waitForExit(lab, shutdownTimeoutMs + 10_000);
    const exitMs = performance.now() - termAt;
    await lab.stop();
    recordMeasurement('case 12 SIGTERM in flight', id, { inFlight: inFlight.length, exitAfterMs: exitMs });
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(exitMs, 'exit before the shutdown deadline: the transfers finished first').toBeLessThan(shutdownTimeoutMs);
    for (const client of inFlight) expect(client.closedCleanly, 'an in-flight transfer completes').toBe(true);
    // The queued clients (lab 01's, a pool's) were never accepted: the kernel resets them when
    // the listening socket closes, and not one byte of theirs was taken.
    const queued = clients.filter((c) => !inFlight.includes(c));
    for (const client of queued) expect(client.received).toBe(0);
    guard.verifyEchoes(queued);
    for (const pid of [...before, ...children]) expect(isAlive(pid), `child ${pid} gone`).toBe(false);
  });

  it('case 12: SIGTERM while a client never reads: that client is closed at the shutdown deadline, exit 0', { timeout: 90_000 }, async () => {
    const shutdownTimeoutMs = 1000;
    const lab = await start(['--quiet', '--shutdown-timeout', String(shutdownTimeoutMs / 1000), '--idle-timeout', '60']);
    const guard = await NothingLost.begin(lab);
    const hog = await EchoClient.connect(lab.port);
    const block = randomBytes(64 * KiB, 12);
    await hog.send(block);
    await hog.waitForReceived(block.length);
    hog.stopReading();
    void hog.sendAll(repeatedBlocks(64 * MiB, block));
    // Stuck: the server has stopped reading the hog's bytes, which pile up in the kernel.
    await eventually(() => ((connectionQueues(lab.port, hog.socket.localPort!)?.serverUnread ?? 0) > 0 ? true : undefined), 30_000, 'the server to stop reading');
    const children = liveChildren(lab.pid);

    const termAt = performance.now();
    lab.child.kill('SIGTERM');
    const { code, signal } = await waitForExit(lab, shutdownTimeoutMs + 15_000);
    const exitMs = performance.now() - termAt;
    await lab.stop();
    await hog.waitForClose(10_000);
    recordMeasurement('case 12 SIGTERM, client never reads', id, { exitAfterMs: exitMs });
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // It waited for the deadline (the hog was not done), then closed it and exited.
    expect(exitMs).toBeGreaterThanOrEqual(shutdownTimeoutMs - 500);
    expect(exitMs).toBeLessThan(shutdownTimeoutMs + 10_000);
    for (const pid of children) expect(isAlive(pid), `child ${pid} gone`).toBe(false);
    guard.verifyEchoes();
  });
});
