/**
 * The benchmark's TypeScript load generators (the idle holds and the churn client) against small
 * misbehaving echo servers started in the test: they must count exactly what echoed and catch
 * every wrong byte. No benchmark figure is asserted: only counts the test servers make certain.
 * The raw-echo client is C, tested in c-loadgen.test.ts.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { closeFakeServers, framed, testServer } from './helpers/fake-server.js';
import { holdConnections } from '../bench/load/hold.js';
import { runChurn } from '../bench/load/churn-client.js';

afterEach(async () => {
  await closeFakeServers();
});

describe('capacity probe', () => {
  it('counts the connections that echo and those that never do', async () => {
    const port = await testServer((socket, index) => {
      if (index % 2 === 0) socket.pipe(socket);
    });
    const held = await holdConnections({ host: '127.0.0.1', port, count: 10, concurrency: 3 });
    try {
      expect(held.connected).toBe(10);
      const probe = await held.probe(200, 10_000);
      expect(probe.echoed).toBe(5);
      expect(probe.failed).toBe(0);
    } finally {
      await held.close();
    }
  });
});

describe('churn', () => {
  it('checks each echo and counts failures by kind', async () => {
    const port = await testServer((socket, index) =>
      framed(socket, 64, (message) => {
        const reply = Buffer.from(message);
        if (index % 2 === 1) reply[10] = reply[10]! ^ 0xff;
        socket.end(reply);
      }),
    );
    const [result] = await runChurn({ host: '127.0.0.1', port, clients: 2, messageBytes: 64, durationMs: 200, warmupMs: 0 });
    expect(result!.errors.corrupt).toBeGreaterThan(0);
    expect(result!.errors.socket + result!.errors.connect + result!.errors.short + result!.errors.timeout).toBe(0);
    expect(result!.cycles).toBeGreaterThan(0);
  });
});
