/**
 * The suite every lab must pass: each lab's real entry runs as a child process on a free port and
 * is spoken to over real TCP. The tests are the same for every model and every lab the registry
 * (labs/index.ts) lists; each model's own truth, the thing that makes it that model, is tested in
 * the lab's folder (labs/ID/model.test.ts).
 */

import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../harness/launch.js';
import { treeUsage } from '../harness/processes.js';
import { listeningAddress } from '../harness/sockets.js';
import { httpRequest, httpResponse, roundTrip, stopCleanly } from './helpers/exchange.js';
import { labCases } from './helpers/labs.js';
import { closeAllClients, connect } from './helpers/tcp.js';
import { eventually, randomChunks, seededRandom } from './helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe.each(labCases())('lab %s', ({ start, run }) => {
  describe('echo protocol', () => {
    it('echoes 1 MiB sent in random chunk sizes byte for byte, then closes after the client half-closes', async () => {
      const lab = await start(['--quiet']);
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
      const lab = await start(['--quiet']);
      const client = await connect(lab.port);
      client.socket.end(Buffer.from('last words\n'));
      expect((await client.waitForEnd()).toString()).toBe('last words\n');
      await client.closed;
      await stopCleanly(lab);
    });
  });

  describe('http protocol', () => {
    it('answers keep-alive, pipelined and Connection: close requests, and 400 for garbage', async () => {
      const lab = await start(['--quiet', '--protocol', 'http']);

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
    const lab = await start(['--quiet', '--protocol', 'http', '--work-us', String(workUs)]);
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

  // A bad flag's one line is robust case 13 (test/robust/cli.test.ts), once per lab; the port is
  // each variant's own, as some bind theirs another way (SO_REUSEPORT, a socket per worker).
  it('binds 127.0.0.1 unless told otherwise, and a second start on its port gets one line on stderr and exit status 2', async () => {
    const lab = await start(['--quiet']);
    expect(lab.host).toBe('127.0.0.1');
    expect(listeningAddress(lab.port)).toBe('127.0.0.1');
    const clash = await run(['--port', String(lab.port)]);
    expect(clash.code).toBe(2);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    expect(clash.stderr).toContain('already in use');
    expect(clash.stderr).not.toMatch(/^\s+at /m);
    await stopCleanly(lab);
  });
});
