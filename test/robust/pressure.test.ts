/**
 * Robust suite, backpressure and bounded memory: a slow reader (case 2) and a client that never
 * reads (case 3). A server that keeps reading what it cannot send must buffer it somewhere; these
 * cases check it stops reading instead (the bytes wait in the kernel, where TCP flow control
 * pushes back on the sender), and that a client who never reads is eventually closed.
 *
 * Memory is the resident memory (RSS) of the server's whole process tree, sampled every 100 ms.
 * The bound is the issue's: baseline + 48 MiB. The baseline is the tree's peak while the same
 * connections first echo 64 MiB at full speed: that includes lab 02's child per connection (a
 * whole Node process, ~45 MiB: the model's fixed cost, not growth) and the dead read buffers each
 * V8 heap holds until its next collection (lab 03 has three heaps and holds ~110 MiB over rest
 * under any streaming load, fast or slow). What remains is what the slow client costs on top; a
 * server that read on for it would hold up to the 64 MiB it sent. The at-rest figure is recorded
 * too.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { servingCases } from '../helpers/labs.js';
import { randomChunks, seededRandom } from '../helpers/util.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { httpRequest, httpResponse } from './helpers/http.js';
import { recordMeasurement, toMiB } from './helpers/measure.js';
import { NothingLost, stopCleanly } from './helpers/nothing-lost.js';
import { connectionQueues } from '../../harness/sockets.js';
import { MemorySampler } from './helpers/observe.js';
import { KiB, MiB, randomBytes, repeatedBlocks } from './helpers/payload.js';

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

/** The bound: the server tree may grow by less than this over its baseline. */
const MEMORY_MARGIN = 48 * MiB;

/** Full-speed traffic that sets the server's working set before a memory baseline. */
const WARM_UP_BYTES = 64 * MiB;

/**
 * Echoes `bytes` through each client as fast as the server goes, and returns the peak memory of
 * the server tree meanwhile: the baseline of the memory bound. It includes what a server moving
 * bytes at full speed holds anyway (each V8 heap keeps dead read buffers until its next
 * collection: tens of MiB per isolate), so that the bound measures what the slow client costs
 * on top: a server that kept reading for it would hold up to everything it sent.
 */
async function warmUp(lab: LabProcess, clients: EchoClient[], block: Buffer, bytes = WARM_UP_BYTES): Promise<number> {
  const memory = new MemorySampler(lab.pid);
  try {
    await Promise.all(
      clients.map(async (client) => {
        const target = client.received + bytes;
        await Promise.all([client.sendAll(repeatedBlocks(bytes, block)), client.waitForReceived(target, 60_000)]);
      }),
    );
  } finally {
    memory.stop();
  }
  return memory.peakBytes;
}

/** Polls the server's unread receive queue of one connection; keeps the largest value seen. */
function watchUnread(lab: LabProcess, client: EchoClient): { stop(): number } {
  let most = 0;
  const clientPort = client.socket.localPort!;
  const timer = setInterval(() => {
    most = Math.max(most, connectionQueues(lab.port, clientPort)?.serverUnread ?? 0);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return most;
    },
  };
}

describe.each(servingCases())('lab %s', ({ id, traits, start }) => {
  it('case 2: slow reader: sends 64 MiB, reads 32 MiB/s: the server stops reading, its tree stays under baseline + 48 MiB', { timeout: 120_000 }, async () => {
    const lab = await start(['--quiet']);
    const guard = await NothingLost.begin(lab);
    const block = randomBytes(64 * KiB, 2);
    const client = await guard.connect();
    const baseline = await warmUp(lab, [client], block);
    // Far slower than any lab echoes (hundreds of MiB/s here), so the server must stop reading;
    // a server that read on would hold most of the 64 MiB while the reader takes 2 s for it.
    client.readAtRate(32 * MiB);

    const memory = new MemorySampler(lab.pid);
    const unread = watchUnread(lab, client);
    let mostUnread = 0;
    try {
      await client.sendAll(repeatedBlocks(64 * MiB, block));
      client.end();
      await client.waitForClose(90_000);
    } finally {
      memory.stop();
      mostUnread = unread.stop();
    }
    const growth = memory.peakBytes - baseline;
    recordMeasurement('case 2 slow reader', id, {
      atRestMiB: toMiB(guard.baseline.rssBytes),
      warmPeakMiB: toMiB(baseline),
      slowPeakMiB: toMiB(memory.peakBytes),
      growthOverWarmMiB: toMiB(growth),
      mostUnreadKiB: mostUnread / KiB,
      samples: memory.samples,
    });
    expect(client.closedCleanly).toBe(true);
    expect(client.received).toBe(client.sent);
    // Bytes waited in the kernel's receive queue of the server's socket: the server had stopped
    // reading them (a server that read on would keep that queue near empty and grow instead).
    expect(mostUnread, 'most bytes left unread by the server').toBeGreaterThanOrEqual(64 * KiB);
    expect(growth, `memory growth ${toMiB(growth).toFixed(1)} MiB`).toBeLessThan(MEMORY_MARGIN);
    await guard.verify();
    await stopCleanly(lab);
  });

  it('case 3: a client that never reads while sending up to 256 MiB is closed by the idle (write) timeout; memory bounded; the other client is unaffected', { timeout: 120_000 }, async () => {
    const lab = await start(['--idle-timeout', '1']);
    const guard = await NothingLost.begin(lab);
    const block = randomBytes(64 * KiB, 3);
    const hog = await EchoClient.connect(lab.port);
    // The other client is warmed up beside the hog (lab 02: its child is part of the baseline);
    // lab 01 serves one client at a time, so there it waits behind the hog untouched.
    const other = await guard.connect();
    const baseline = await warmUp(lab, traits.kernelQueueOnly ? [hog] : [hog, other], block);
    hog.stopReading();

    const memory = new MemorySampler(lab.pid);
    try {
      const hogSending = hog.sendAll(repeatedBlocks(256 * MiB, block));
      const payload = randomBytes(4 * MiB, 33);
      await other.sendAll(randomChunks(payload, seededRandom(33), 1, 64 * KiB));
      other.end();
      await other.waitForClose(60_000);
      expect(other.closedCleanly, 'the other client is served in full').toBe(true);

      expect(await hogSending, 'the hog could not send everything').toBe(false);
      await hog.waitForClose();
    } finally {
      memory.stop();
    }
    const growth = memory.peakBytes - baseline;
    recordMeasurement('case 3 never reads (idle timeout)', id, { growthOverWarmMiB: toMiB(growth), hogSentMiB: toMiB(hog.sent - WARM_UP_BYTES) });
    expect(hog.sent - WARM_UP_BYTES, 'bytes the hog got into the server before it was closed').toBeLessThan(256 * MiB);
    // The server says why it closed the hog (lab 02: the child's line may trail the close a little).
    await lab.waitForLine(/disconnected \(idle timeout;/, 10_000);
    expect(growth, `memory growth ${toMiB(growth).toFixed(1)} MiB`).toBeLessThan(MEMORY_MARGIN);
    await guard.verify();
    await stopCleanly(lab);
  });

  it('case 3: http, a client that pipelines 1 MiB requests and never reads is closed past --max-pending; memory bounded; the other client is unaffected', { timeout: 120_000 }, async () => {
    const maxPending = 256 * KiB;
    const lab = await start(['--protocol', 'http', '--max-pending', String(maxPending)]);
    const guard = await NothingLost.begin(lab, 'http');
    const body = randomBytes(MiB, 34).toString('base64').slice(0, MiB - 64);
    const request = Buffer.from(httpRequest('/big', body));
    const hog = await EchoClient.connect(lab.port);
    const other = await EchoClient.connect(lab.port, { keep: true });
    // Warm-up as in the echo cases, with replies well under the cap: a single reply larger than
    // --max-pending is over it the moment it is written, whoever the client (lab 01 checks the
    // reply's size, labs 02-04 what the kernel did not take at once), so the cap is only
    // meaningful above the largest reply. The hog's 1 MiB replies are over it on purpose.
    const small = Buffer.from(httpRequest('/warm-up', body.slice(0, 64 * KiB)));
    const smallResponse = Buffer.from(httpResponse(body.slice(0, 64 * KiB)));
    const warm = new MemorySampler(lab.pid);
    try {
      for (const client of traits.kernelQueueOnly ? [hog] : [hog, other]) {
        for (let i = 0; i < 512; i++) {
          const before = client.received;
          await client.send(small);
          await client.waitForReceived(before + smallResponse.length);
        }
      }
    } finally {
      warm.stop();
    }
    const baseline = warm.peakBytes;
    hog.stopReading();

    const memory = new MemorySampler(lab.pid);
    try {
      const hogSending = hog.sendAll(Array.from({ length: 128 }, () => request));
      const skip = other.received;
      let expected = '';
      for (let i = 0; i < 10; i++) {
        await other.send(Buffer.from(httpRequest(`/other/${i}`, `request ${i}`)));
        expected += httpResponse(`request ${i}`);
        await other.waitForReceived(skip + expected.length);
      }
      expect(other.receivedBytes.subarray(skip).toString(), 'the other client gets every response').toBe(expected);
      other.end();
      await other.waitForClose();

      expect(await hogSending, 'the hog could not send everything').toBe(false);
      await hog.waitForClose();
    } finally {
      memory.stop();
    }
    const growth = memory.peakBytes - baseline;
    recordMeasurement('case 3 never reads (--max-pending)', id, { growthOverWarmMiB: toMiB(growth) });
    await lab.waitForLine(/disconnected \(over 256\.0 KiB of unsent replies;/, 10_000);
    expect(growth, `memory growth ${toMiB(growth).toFixed(1)} MiB`).toBeLessThan(MEMORY_MARGIN);
    await guard.verify();
    await stopCleanly(lab);
  });
});
