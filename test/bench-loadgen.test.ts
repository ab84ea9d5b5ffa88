/**
 * The benchmark's raw-TCP load generator against small misbehaving echo servers started in the
 * test: it must catch every wrong byte, count short reads and per-connection round trips
 * exactly, and never call a slow or absent reply an error when it is only waiting.
 * No benchmark figure is asserted: only counts the test servers make certain.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { closeFakeServers, framed, testServer } from './helpers/fake-server.js';
import { runEchoLoad, type EchoLoadOptions } from '../bench/load/echo.js';
import { holdConnections } from '../bench/load/hold.js';
import { runChurn } from '../bench/load/churn.js';
import { startExecutable, stopAllLabs } from '../bench/lib/launch.js';
import { buildReference, REFERENCE_BINARY, buildThreadsReference, THREADS_REFERENCE_BINARY } from '../bench/reference/build.js';


afterEach(async () => {
  await closeFakeServers();
  await stopAllLabs();
});

const base = (port: number): EchoLoadOptions => ({
  host: '127.0.0.1',
  port,
  connections: 1,
  messageBytes: 64,
  durationMs: 10_000,
  warmupMs: 0,
  drainTimeoutMs: 300,
});

describe('echo load generator', () => {
  it('counts exact round trips per connection against a correct echo server', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const result = await runEchoLoad({ ...base(port), connections: 4, roundTripsPerConnection: 25 });
    expect(result.errors).toEqual({ connect: 0, socket: 0, corrupt: 0, extra: 0, missing: 0 });
    const [window] = result.windows;
    expect(window!.perConnection).toEqual([25, 25, 25, 25]);
    expect(window!.roundTrips).toBe(100);
    expect([window!.fewest, window!.most]).toEqual([25, 25]);
    expect(window!.latencyUs.count).toBe(100);
    expect(window!.neverAnswered).toBe(0);
  });

  it('counts each window on its own when measuring several back to back', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const result = await runEchoLoad({ ...base(port), connections: 2, roundTripsPerConnection: 10, windows: 3 });
    expect(result.windows.map((w) => w.roundTrips)).toEqual([20, 20, 20]);
    expect(result.windows.map((w) => w.perConnection)).toEqual([[10, 10], [10, 10], [10, 10]]);
    expect(result.errorCount).toBe(0);
  });

  it('detects a corrupted byte', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => {
        const reply = Buffer.from(message);
        if (seq === 2) reply[40] = reply[40]! ^ 0x01;
        socket.write(reply);
      }),
    );
    const result = await runEchoLoad({ ...base(port), roundTripsPerConnection: 10 });
    expect(result.errors.corrupt).toBe(1);
    expect(result.errorCount).toBe(1);
    expect(result.firstError).toContain('byte 40 of message 2');
    expect(result.windows[0]!.roundTrips).toBe(2);
  });

  it('detects a missing byte', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => socket.write(seq === 3 ? message.subarray(0, 63) : message)),
    );
    // The reply stops short, so the window ends by time; the drain then finds the byte missing.
    const result = await runEchoLoad({ ...base(port), roundTripsPerConnection: 10, durationMs: 300 });
    expect(result.errors.missing).toBe(1);
    expect(result.errorCount).toBe(1);
    expect(result.firstError).toContain('stopped at 63 of 64 bytes');
    expect(result.windows[0]!.roundTrips).toBe(3);
  });

  it('detects an extra byte', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => socket.write(seq === 1 ? Buffer.concat([message, Buffer.from('!')]) : message)),
    );
    const result = await runEchoLoad({ ...base(port), roundTripsPerConnection: 10 });
    expect(result.errors.extra).toBe(1);
    expect(result.errorCount).toBe(1);
    expect(result.windows[0]!.roundTrips).toBe(1);
  });

  it('calls a server that closes with a reply owed a missing reply', async () => {
    const port = await testServer((socket) => framed(socket, 64, (message, seq) => (seq === 2 ? socket.end() : socket.write(message))));
    const result = await runEchoLoad({ ...base(port), roundTripsPerConnection: 10 });
    expect(result.errors.missing).toBe(1);
    expect(result.windows[0]!.roundTrips).toBe(2);
  });

  it('counts short reads exactly when every reply arrives in four pieces', async () => {
    // The server sends each next piece only once the client has read the last one, so every
    // piece is its own read: three short reads per round trip, then the read that completes it.
    let readSeen: (() => void) | undefined;
    const port = await testServer((socket) => {
      let sending = Promise.resolve();
      framed(socket, 64, (message) => {
        const copy = Buffer.from(message);
        sending = sending.then(async () => {
          for (let i = 0; i < 4; i++) {
            const read = new Promise<void>((resolve) => (readSeen = resolve));
            socket.write(copy.subarray(i * 16, (i + 1) * 16));
            await read;
          }
        });
      });
    });
    const result = await runEchoLoad({ ...base(port), roundTripsPerConnection: 12, onRead: () => readSeen?.() });
    expect(result.errorCount).toBe(0);
    expect(result.windows[0]!.roundTrips).toBe(12);
    expect(result.windows[0]!.shortReads).toBe(36);
  });

  it('shows a server that serves only one connection as unfair, without calling the waiting ones errors', async () => {
    const port = await testServer((socket, index) => {
      if (index === 0) socket.pipe(socket);
    });
    const result = await runEchoLoad({ ...base(port), connections: 3, durationMs: 300 });
    const [window] = result.windows;
    expect(result.errorCount).toBe(0);
    expect(window!.fewest).toBe(0);
    expect(window!.most).toBe(window!.roundTrips);
    expect(window!.most).toBeGreaterThan(0);
    expect(window!.neverAnswered).toBe(2);
    expect(window!.perConnection.filter((n) => n === 0)).toHaveLength(2);
  });

  it('counts a connection that cannot be made as a connect error', async () => {
    const port = await testServer(() => {});
    // Closed again at once: the port now refuses connections.
    await closeFakeServers();
    const result = await runEchoLoad({ ...base(port), connections: 2, durationMs: 50 });
    expect(result.errors.connect).toBe(2);
    expect(result.connected).toBe(0);
  });
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

describe('C reference server', () => {
  // Built with the system's cc as the harness does; without a compiler the harness skips it too.
  const unavailable = buildReference();
  it.skipIf(unavailable !== undefined)('echoes every byte of every message, short reads and all', async () => {
    const server = await startExecutable('c-epoll', REFERENCE_BINARY);
    const result = await runEchoLoad({ ...base(server.port), connections: 8, messageBytes: 100_000, roundTripsPerConnection: 20 });
    expect(result.errorCount).toBe(0);
    expect(result.windows[0]!.perConnection).toEqual(Array.from({ length: 8 }, () => 20));
  });
});

describe('C threads reference server', () => {
  const unavailable = buildThreadsReference();
  it.skipIf(unavailable !== undefined)('a thread per connection echoes every byte of every message', async () => {
    const server = await startExecutable('c-threads', THREADS_REFERENCE_BINARY, ['--threads', 'per-connection']);
    const result = await runEchoLoad({ ...base(server.port), connections: 8, messageBytes: 100_000, roundTripsPerConnection: 20 });
    expect(result.errorCount).toBe(0);
    expect(result.windows[0]!.perConnection).toEqual(Array.from({ length: 8 }, () => 20));
  });
});
