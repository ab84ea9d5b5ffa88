/**
 * The suite every lab must pass: each lab's real entry runs as a child process on a free port and
 * is spoken to over real TCP. The protocol tests are the same for all four models; the last test
 * of each lab checks the model's own truth, the thing that makes it that model.
 */

import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LAB_IDS, runEntry, startLab, stopAllLabs, type LabProcess } from '../bench/lib/launch.js';
import { childPids, listenQueue, stat, treeUsage } from '../bench/lib/procfs.js';
import { closeAllClients, connect, type Client } from './helpers/tcp.js';
import { eventually, randomChunks, seededRandom } from './helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/**
 * One exchange on an open connection: sends `message`, returns the next `replyLength` bytes
 * received (for echo, the same length as the message).
 */
async function roundTrip(client: Client, message: Buffer | string, replyLength = Buffer.byteLength(message)): Promise<string> {
  const before = client.received().length;
  client.socket.write(message);
  const all = await client.waitForBytes(before + replyLength);
  return all.subarray(before, before + replyLength).toString();
}

const httpRequest = (target: string, body = '', extra = '') =>
  `POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const httpResponse = (body: string, close = false) =>
  'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
  `Content-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;

async function stopCleanly(lab: LabProcess): Promise<void> {
  const { code, signal } = await lab.stop('SIGTERM');
  expect({ code, signal }).toEqual({ code: 0, signal: null });
}

describe.each(LAB_IDS)('lab %s', (id) => {
  describe('echo protocol', () => {
    it('echoes 1 MiB sent in random chunk sizes byte for byte, then closes after the client half-closes', async () => {
      const lab = await startLab(id, ['--quiet']);
      const random = seededRandom(0x5eed);
      const payload = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
      const client = await connect(lab.port);
      for (const chunk of randomChunks(payload, random, 1, 64 * 1024)) client.socket.write(chunk);
      client.socket.end();
      const echoed = await client.waitForEnd();
      expect(echoed.length).toBe(payload.length);
      expect(sha256(echoed)).toBe(sha256(payload));
      await stopCleanly(lab);
    });

    it('echoes everything sent before a FIN, then sends its own FIN', async () => {
      const lab = await startLab(id, ['--quiet']);
      const client = await connect(lab.port);
      client.socket.end(Buffer.from('last words\n'));
      expect((await client.waitForEnd()).toString()).toBe('last words\n');
      await client.closed;
      await stopCleanly(lab);
    });
  });

  describe('http protocol', () => {
    it('answers keep-alive, pipelined and Connection: close requests, and 400 for garbage', async () => {
      const lab = await startLab(id, ['--quiet', '--protocol', 'http']);

      const keepAlive = await connect(lab.port);
      const expected = httpResponse('hello');
      expect(await roundTrip(keepAlive, httpRequest('/a', 'hello'), expected.length)).toBe(expected);
      // The same connection serves a second request: it was kept alive.
      const again = httpResponse('again');
      expect(await roundTrip(keepAlive, httpRequest('/b', 'again'), again.length)).toBe(again);
      keepAlive.socket.end();
      await keepAlive.waitForEnd();

      const pipelined = await connect(lab.port);
      pipelined.socket.write(httpRequest('/one', 'first') + httpRequest('/two', '', 'Connection: close\r\n'));
      expect((await pipelined.waitForEnd()).toString()).toBe(httpResponse('first') + httpResponse('/two', true));

      const garbage = await connect(lab.port);
      garbage.socket.write('this is not http\r\n\r\n');
      const reply = (await garbage.waitForEnd()).toString();
      expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(reply).toContain('Connection: close\r\n');
      await stopCleanly(lab);
    });
  });

  it('--work-us spends real CPU in the server for each request', async () => {
    const workUs = 5000;
    const requests = 60;
    const lab = await startLab(id, ['--quiet', '--protocol', 'http', '--work-us', String(workUs)]);
    const client = await connect(lab.port);
    const cpuBefore = treeUsage(lab.pid).cpuMs;
    for (let i = 0; i < requests; i++) {
      expect(await roundTrip(client, httpRequest('/', 'x'), httpResponse('x').length)).toBe(httpResponse('x'));
    }
    // Lab 02's child exits when the client closes; the kernel then adds its CPU time to the parent's.
    client.socket.end();
    await client.closed;
    const spentMs = await eventually(() => {
      const spent = treeUsage(lab.pid).cpuMs - cpuBefore;
      return spent >= (requests * workUs) / 1000 / 2 ? spent : undefined;
    }, 10_000);
    // Calibration picks the fastest of several rounds, so the work is never shorter than asked;
    // half the nominal CPU leaves room for clock-tick granularity.
    expect(spentMs).toBeGreaterThanOrEqual((requests * workUs) / 1000 / 2);
    await stopCleanly(lab);
  });

  it('rejects a bad flag and a port in use with one line on stderr and exit status 2', async () => {
    const bad = await runEntry(id, ['--port', 'not-a-port']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--port');

    const lab = await startLab(id, ['--quiet']);
    const clash = await runEntry(id, ['--port', String(lab.port)]);
    expect(clash.code).toBe(2);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toContain('already in use');
    expect(clash.stderr).not.toMatch(/^\s+at /m);
    await stopCleanly(lab);
  });

  it('binds 127.0.0.1 unless told otherwise', async () => {
    const lab = await startLab(id, ['--quiet']);
    expect(lab.host).toBe('127.0.0.1');
    await stopCleanly(lab);
  });

  it(`shows its model: ${truthOf(id)}`, async () => {
    await modelTruth[id]!();
  });
});

function truthOf(id: string): string {
  const truths: Record<string, string> = {
    '01-serial': 'one client at a time, the next waiting in the kernel accept queue',
    '02-process-per-connection': 'one child process per open client, none left behind',
    '03-worker-pool': 'never more tasks running at once than --threads',
    '04-evented': 'many clients at once in one process, no children',
    '06-loop-per-core': 'clients served on --workers event loops, threads of one process (more in its model.test.ts)',
  };
  return truths[id]!;
}

const modelTruth: Record<string, () => Promise<void>> = {
  async '01-serial'() {
    const lab = await startLab('01-serial', ['--quiet']);
    const first = await connect(lab.port);
    expect((await roundTrip(first, Buffer.from('one\n')))).toBe('one\n');
    // The kernel completes client 2's handshake on its own: connect succeeds while the server is
    // busy with client 1, and client 2 waits in the listening socket's accept queue.
    const second = await connect(lab.port);
    second.socket.write('two\n');
    await eventually(() => ((listenQueue(lab.port)?.acceptQueueDepth ?? 0) >= 1 ? true : undefined), 10_000);
    // Client 1 is still served, and only client 1.
    expect((await roundTrip(first, Buffer.from('still one\n')))).toBe('still one\n');
    expect(second.received().length).toBe(0);
    first.socket.end();
    await first.waitForEnd();
    // Now the server accepts client 2 and echoes what waited in the kernel for it.
    expect((await second.waitForBytes(4)).toString()).toBe('two\n');
    expect(listenQueue(lab.port)?.acceptQueueDepth).toBe(0);
    second.socket.end();
    await second.waitForEnd();
    await stopCleanly(lab);
  },

  async '02-process-per-connection'() {
    const lab = await startLab('02-process-per-connection', ['--quiet']);
    const live = () => childPids(lab.pid).filter((pid) => stat(pid)?.state !== 'Z');
    const clients = await Promise.all([1, 2, 3].map(() => connect(lab.port)));
    for (const [i, client] of clients.entries()) {
      expect((await roundTrip(client, Buffer.from(`client ${i}\n`)))).toBe(`client ${i}\n`);
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
  },

  async '03-worker-pool'() {
    const threads = 2;
    const lab = await startLab('03-worker-pool', ['--protocol', 'http', '--work-us', '20000', '--threads', String(threads), '--quiet']);
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
    const summary = /pool: (\d+) tasks run, at most (\d+) at once on (\d+) threads/.exec(lab.output().stdout);
    expect(summary, lab.output().stdout).not.toBeNull();
    const [, tasks, peak, size] = summary!.map(Number);
    expect(tasks).toBe(18);
    expect(size).toBe(threads);
    // Six clients kept both threads busy, but never a third task at once.
    expect(peak).toBe(threads);
  },

  async '04-evented'() {
    const lab = await startLab('04-evented', ['--quiet']);
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(lab.port)));
    // All 50 are open at the same time, and every one of them is served.
    await Promise.all(
      clients.map(async (client, i) => {
        expect((await roundTrip(client, Buffer.from(`hello from ${i}\n`)))).toBe(`hello from ${i}\n`);
      }),
    );
    expect(childPids(lab.pid)).toEqual([]);
    expect(treeUsage(lab.pid).processes).toBe(1);
    for (const client of clients) client.socket.end();
    await stopCleanly(lab);
  },

  async '06-loop-per-core'() {
    const lab = await startLab('06-loop-per-core', ['--quiet', '--workers', '2']);
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect(lab.port)));
    for (const [i, client] of clients.entries()) expect(await roundTrip(client, `hello from ${i}\n`)).toBe(`hello from ${i}\n`);
    expect(childPids(lab.pid)).toEqual([]);
    for (const client of clients) client.socket.end();
    await stopCleanly(lab);
    // Both loops served: the shutdown summary has a line for each, and together they count all ten.
    const served = [...lab.output().stdout.matchAll(/worker \d+: (\d+) connections/g)].map((m) => Number(m[1]));
    expect(served).toHaveLength(2);
    expect(served.reduce((a, b) => a + b, 0)).toBe(10);
  },
};
