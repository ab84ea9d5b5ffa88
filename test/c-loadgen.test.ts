/**
 * The C load generator (bench/load/c-echo-client.c through bench/load/c-client.ts) against real
 * servers on port 0: a correct echo server, small faulty servers written here (a flipped byte, a
 * dropped byte, a byte too many, replies in 1-byte writes), the C reference server and the
 * plain-Node reference server. It must count round trips exactly and catch every wrong byte.
 * No benchmark figure is asserted: only counts the test servers make certain.
 *
 * Nothing is skipped: without `cc` the build's reason fails every test that needs the binary.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeFakeServers, framed, testServer } from './helpers/fake-server.js';
import { CEchoErrors, parseResult, runCEchoClient, type CEchoOptions, type CEchoResult } from '../bench/load/c-client.js';
import { hasTaskset } from '../harness/affinity.js';
import { repoRoot, startExecutable, stopAllLabs } from '../harness/launch.js';
import { buildCEchoClient, buildReference, buildThreadsReference, REFERENCE_BINARY, THREADS_REFERENCE_BINARY } from '../bench/reference/build.js';
import { closeAllClients, connect } from './helpers/tcp.js';

const children = new Set<ChildProcess>();

afterEach(async () => {
  await closeFakeServers();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  closeAllClients();
  await stopAllLabs();
});

/** Counted runs: no warm-up, and the window ends once each connection has done its round trips. */
const counted = (port: number, roundTrips: number, more: Partial<CEchoOptions> = {}): CEchoOptions => ({
  port,
  connections: 1,
  size: 64,
  warmupSeconds: 0,
  seconds: 30,
  drainSeconds: 1,
  roundTripsPerConnection: roundTrips,
  ...more,
});

/** Runs the client where it must find errors, and returns its report from the rejection. */
async function expectErrors(options: CEchoOptions): Promise<CEchoResult> {
  const error = await runCEchoClient(options).then(
    (result) => new Error(`expected errors, got a clean run: ${JSON.stringify(result.errors)}`),
    (e: unknown) => e,
  );
  if (!(error instanceof CEchoErrors)) throw error;
  return error.result;
}

describe('C load generator', () => {
  it('builds with cc -O2 -Wall -Wextra -Werror', () => {
    expect(buildCEchoClient()).toBeUndefined();
  });

  it('counts exact round trips per connection against a correct echo server', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const result = await runCEchoClient(counted(port, 25, { connections: 4 }));
    expect(result.errors).toEqual({ connect: 0, socket: 0, corrupt: 0, extra: 0, missing: 0, total: 0 });
    expect(result.connected).toBe(4);
    expect(result.perConnection).toEqual([25, 25, 25, 25]);
    expect(result.roundTrips).toBe(100);
    expect([result.fewest, result.most]).toEqual([25, 25]);
    expect(result.latencyUs.count).toBe(100);
    expect(result.latencyUs.min).toBeGreaterThan(0);
    expect(result.latencyUs.p50).toBeLessThanOrEqual(result.latencyUs.p99);
    expect(result.latencyUs.p99).toBeLessThanOrEqual(result.latencyUs.max);
    expect(result.neverAnswered).toBe(0);
  });

  it('measures a timed window with every connection served', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const windows: string[] = [];
    const result = await runCEchoClient({
      port,
      connections: 3,
      size: 64,
      warmupSeconds: 0.1,
      seconds: 0.3,
      onWindowStart: () => windows.push('open'),
      onWindowEnd: () => windows.push('closed'),
    });
    expect(windows).toEqual(['open', 'closed']);
    expect(result.roundTrips).toBeGreaterThan(0);
    expect(result.perConnection.every((n) => n > 0)).toBe(true);
    expect(result.windowS).toBeGreaterThanOrEqual(0.3);
    expect(result.errors.total).toBe(0);
    expect(result.cpu.fraction).toBeGreaterThan(0);
  });

  it('keeps several messages in flight with --pipeline, and checks every one', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const result = await runCEchoClient(counted(port, 30, { connections: 2, pipeline: 4 }));
    expect(result.perConnection).toEqual([30, 30]);
    expect(result.errors.total).toBe(0);
  });

  it('detects a corrupted byte, with its message and offset', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => {
        const reply = Buffer.from(message);
        if (seq === 2) reply[40] = reply[40]! ^ 0x01;
        socket.write(reply);
      }),
    );
    const result = await expectErrors(counted(port, 10));
    expect(result.errors).toMatchObject({ corrupt: 1, total: 1 });
    expect(result.firstErrors[0]).toMatchObject({ kind: 'corrupt', connection: 0, message: 2, offset: 40 });
    expect(result.roundTrips).toBe(2);
  });

  it('detects a missing last byte once the drain ends', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => socket.write(seq === 3 ? message.subarray(0, 63) : message)),
    );
    // The reply stops short, so the window ends by time; the drain then finds the byte missing.
    const result = await expectErrors(counted(port, 10, { seconds: 0.3, drainSeconds: 0.3 }));
    expect(result.errors).toMatchObject({ missing: 1, total: 1 });
    expect(result.firstErrors[0]).toMatchObject({ kind: 'missing', message: 3, offset: 63 });
    expect(result.firstErrors[0]!.detail).toContain('stopped at 63 of 64 bytes');
    expect(result.roundTrips).toBe(3);
  });

  it('detects a byte dropped from the middle of a reply as the first byte out of place', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) =>
        socket.write(seq === 1 ? Buffer.concat([message.subarray(0, 20), message.subarray(21)]) : message),
      ),
    );
    const result = await expectErrors(counted(port, 10, { seconds: 0.3, drainSeconds: 0.3 }));
    expect(result.errors.total).toBe(1);
    expect(result.firstErrors[0]).toMatchObject({ kind: 'corrupt', message: 1, offset: 20 });
  });

  it('detects an extra byte', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => socket.write(seq === 1 ? Buffer.concat([message, Buffer.from('!')]) : message)),
    );
    const result = await expectErrors(counted(port, 10));
    expect(result.errors).toMatchObject({ extra: 1, total: 1 });
    expect(result.firstErrors[0]).toMatchObject({ kind: 'extra', message: 1 });
    expect(result.roundTrips).toBe(2);
  });

  it('detects an extra byte after the very last reply', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message, seq) => socket.write(seq === 4 ? Buffer.concat([message, Buffer.from('!')]) : message)),
    );
    const result = await expectErrors(counted(port, 5));
    expect(result.errors).toMatchObject({ extra: 1, total: 1 });
    expect(result.roundTrips).toBe(5);
  });

  it('calls a server that closes with a reply owed a missing reply', async () => {
    const port = await testServer((socket) => framed(socket, 64, (message, seq) => (seq === 2 ? socket.end() : socket.write(message))));
    const result = await expectErrors(counted(port, 10));
    expect(result.errors).toMatchObject({ missing: 1, total: 1 });
    expect(result.roundTrips).toBe(2);
  });

  it('reassembles replies the server writes one byte at a time', async () => {
    const port = await testServer((socket) =>
      framed(socket, 64, (message) => {
        const copy = Buffer.from(message);
        // One byte per turn of the event loop: 64 separate writes, 64 separate segments.
        const sendFrom = (i: number) => {
          if (i === copy.length || socket.destroyed) return;
          socket.write(copy.subarray(i, i + 1));
          setImmediate(() => sendFrom(i + 1));
        };
        sendFrom(0);
      }),
    );
    const result = await runCEchoClient(counted(port, 10, { connections: 4 }));
    expect(result.errors.total).toBe(0);
    expect(result.perConnection).toEqual([10, 10, 10, 10]);
    expect(result.shortReads).toBeGreaterThan(0);
  });

  it('warms up until every connection has been answered once, however late (a server starting a process per client)', async () => {
    // Connection k is first answered k × 150 ms after it arrives: the last one 0.6 s after a
    // 0.1 s warm-up would have opened the window.
    const port = await testServer((socket, index) => {
      socket.pause();
      setTimeout(() => socket.resume().pipe(socket), index * 150);
    });
    const result = await runCEchoClient({ port, connections: 5, size: 64, warmupSeconds: 0.1, warmupMaxSeconds: 20, warmupStallSeconds: 5, seconds: 0.3 });
    expect(result.warmupEnd).toBe('answered');
    expect(result.answeredInWarmup).toBe(5);
    expect(result.warmupTookS).toBeGreaterThanOrEqual(0.6);
    expect(result.neverAnswered).toBe(0);
    expect(result.perConnection.every((n) => n > 0), JSON.stringify(result.perConnection)).toBe(true);
    expect(result.warmupRoundTrips).toBeGreaterThanOrEqual(5);
  });

  it('a warm-up that cannot get every connection answered ends at its bound, or once no new one is answered for the stall time, and says which', async () => {
    // The last of each run's three connections is never answered (a serial server's queue).
    const twoOfThree = () => testServer((socket, index) => {
      if (index % 3 < 2) socket.pipe(socket);
    });
    let port = await twoOfThree();
    const bound = await runCEchoClient({ port, connections: 3, size: 64, warmupSeconds: 0.1, warmupMaxSeconds: 0.5, warmupStallSeconds: 60, seconds: 0.2, drainSeconds: 0.2 });
    expect([bound.warmupEnd, bound.answeredInWarmup, bound.neverAnswered]).toEqual(['bound', 2, 1]);
    expect(bound.warmupTookS).toBeGreaterThanOrEqual(0.5);
    port = await twoOfThree();
    const stalled = await runCEchoClient({ port, connections: 3, size: 64, warmupSeconds: 0.1, warmupMaxSeconds: 60, warmupStallSeconds: 0.3, seconds: 0.2, drainSeconds: 0.2 });
    expect([stalled.warmupEnd, stalled.answeredInWarmup]).toEqual(['stalled', 2]);
    // Without a bound of its own the warm-up is exactly --warmup long, as before.
    port = await twoOfThree();
    const fixed = await runCEchoClient({ port, connections: 3, size: 64, warmupSeconds: 0.2, seconds: 0.2, drainSeconds: 0.2 });
    expect([fixed.warmupEnd, fixed.warmupMaxS]).toEqual(['bound', 0.2]);
  });

  it('counts refused connections as connect errors', async () => {
    const port = await testServer(() => {});
    // Closed again at once: the port now refuses connections.
    await closeFakeServers();
    const result = await expectErrors({ port, connections: 2, size: 64, warmupSeconds: 0, seconds: 0.2 });
    expect(result.errors).toMatchObject({ connect: 2, total: 2 });
    expect(result.connected).toBe(0);
    expect(result.firstErrors[0]!.detail).toContain('refused');
  });

  it('rejects with the client\'s one-line usage error on bad options', async () => {
    await expect(runCEchoClient({ port: 1, connections: 0, size: 64, warmupSeconds: 0, seconds: 1 })).rejects.toThrow(
      /exited with status 2: c-echo-client: --connections must be a whole number from 1/,
    );
  });

  it('rejects output that does not match its schema', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const good = await runCEchoClient(counted(port, 3, { connections: 2 }));
    const text = JSON.stringify(good);
    expect(parseResult(text, { connections: 2, size: 64 }).roundTrips).toBe(6);
    const { latencyUs: _dropped, ...withoutLatency } = good;
    expect(() => parseResult(JSON.stringify(withoutLatency), { connections: 2, size: 64 })).toThrow(/latencyUs is not an object/);
    expect(() => parseResult(JSON.stringify({ ...good, roundTrips: 7 }), { connections: 2, size: 64 })).toThrow(/adds up to 6/);
    expect(() => parseResult(text, { connections: 3, size: 64 })).toThrow(/asked 3 × 64 B/);
    expect(() => parseResult('not json', { connections: 2, size: 64 })).toThrow(/not JSON/);
  });

  it.runIf(hasTaskset())('runs pinned to a core with taskset', async () => {
    const port = await testServer((socket) => socket.pipe(socket));
    const result = await runCEchoClient(counted(port, 5, { connections: 2, cpus: '0' }));
    expect(result.perConnection).toEqual([5, 5]);
  });
});

describe('C load generator against the reference servers', () => {
  it('echoes 100 kB messages through the C reference, every reply over several reads', async () => {
    expect(buildReference()).toBeUndefined();
    const server = await startExecutable('c-epoll', REFERENCE_BINARY);
    const result = await runCEchoClient(counted(server.port, 20, { connections: 4, size: 100_000 }));
    expect(result.errors.total).toBe(0);
    expect(result.perConnection).toEqual([20, 20, 20, 20]);
    // A reply is larger than one read (64 KiB), so each needs at least one short read.
    expect(result.shortReads).toBeGreaterThanOrEqual(80);
  });

  for (const threads of ['per-connection', '2']) {
    it(`echoes 100 kB messages through the C threads reference (--threads ${threads})`, async () => {
      expect(buildThreadsReference()).toBeUndefined();
      const server = await startExecutable('c-threads', THREADS_REFERENCE_BINARY, ['--threads', threads]);
      // Prethreaded with 2 threads serves 2 clients at a time; the others wait in the backlog.
      const result = await runCEchoClient(counted(server.port, 20, { connections: 2, size: 100_000 }));
      expect(result.errors.total).toBe(0);
      expect(result.perConnection).toEqual([20, 20]);
    });
  }

  it('plain Node echoes exact bytes, under the C client and byte for byte', async () => {
    const { port } = await startPlainNode();
    const result = await runCEchoClient(counted(port, 20, { connections: 8, size: 1000 }));
    expect(result.errors.total).toBe(0);
    expect(result.perConnection).toEqual(Array.from({ length: 8 }, () => 20));

    const client = await connect(port);
    const sent = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
    client.socket.write(sent);
    expect((await client.waitForBytes(sent.length)).equals(sent)).toBe(true);
  });

  it('plain Node exits 0 on SIGTERM', async () => {
    const { child } = await startPlainNode();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

/**
 * Starts `node dist/bench/reference/plain-node.js --port 0` and waits for its listening line.
 * (harness/launch.ts's startExecutable puts `--port 0` before the script, so it cannot run a
 * Node script; the harness integration will give it one launcher.)
 */
function startPlainNode(): Promise<{ port: number; child: ChildProcess }> {
  const entry = path.join(repoRoot, 'dist', 'bench', 'reference', 'plain-node.js');
  const child = spawn(process.execPath, [entry, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`plain-node printed no listening line within 20 s: ${stdout}${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const match = /^\[plain-node\] listening on 127\.0\.0\.1:(\d+) \(model: .+; pid (\d+)\)$/m.exec(stdout);
      if (!match) return;
      clearTimeout(timer);
      expect(Number(match[2])).toBe(child.pid);
      resolve({ port: Number(match[1]), child });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`plain-node exited (${code}) before listening: ${stderr}`));
    });
  });
}
