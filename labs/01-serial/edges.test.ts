/**
 * Lab 01's own edges, beyond the suite every lab passes (test/labs.test.ts: echo, half-close)
 * and its model test (model.test.ts: one client at a time): it stops promptly although it makes
 * blocking-style system calls, and its own socket code (written against libc, not `net`) gets
 * the edges right.
 */

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runEntry, startLab, stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { connectionQueues, listenQueue } from '../../harness/sockets.js';
import { closeAllClients, connect, type Client } from '../../test/helpers/tcp.js';
import { eventually } from '../../test/helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

/** Generous: polling /proc on a busy machine, never a stand-in for synchronization. */
const WAIT_MS = 10_000;

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function roundTrip(client: Client, message: string): Promise<string> {
  const before = client.received().length;
  client.socket.write(message);
  const all = await client.waitForBytes(before + Buffer.byteLength(message));
  return all.subarray(before).toString();
}

/** Waits until at least `n` finished handshakes sit in the listening socket's accept queue. */
function acceptQueueReaches(lab: LabProcess, n: number): Promise<number> {
  return eventually(() => {
    const depth = listenQueue(lab.port)?.acceptQueueDepth ?? 0;
    return depth >= n ? depth : undefined;
  }, WAIT_MS, `${n} connection(s) in the accept queue of port ${lab.port}`);
}

/** Resolves when the lab's process exits, without signalling it. */
function exitOf(lab: LabProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { child } = lab;
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function stopCleanly(lab: LabProcess): Promise<void> {
  expect(await lab.stop('SIGTERM')).toEqual({ code: 0, signal: null });
}

describe('lab 01-serial', () => {
  it('finishes a reply the client is slow to read: write() says EAGAIN, the server polls for room', async () => {
    const lab = await startLab('01-serial', ['--quiet']);
    // Far more than a paused client's receive buffer and the server's send buffer hold together.
    const payload = randomBytes(16 * 1024 * 1024);
    const client = await connect(lab.port);
    client.socket.pause();
    client.socket.end(payload);
    // The server has stopped reading (unread bytes wait in its socket) because it cannot write
    // (its unsent replies wait too): it is stuck in step 3, waiting for POLLOUT.
    const clientPort = client.socket.localPort!;
    await eventually(() => {
      const queues = connectionQueues(lab.port, clientPort);
      return queues && queues.serverUnread > 0 && queues.serverUnsent > 0 ? true : undefined;
    }, WAIT_MS, 'the server to stall on a full send buffer');
    client.socket.resume();
    const echoed = await client.waitForEnd();
    expect(echoed.length).toBe(payload.length);
    expect(sha256(echoed)).toBe(sha256(payload));
    await stopCleanly(lab);
  });

  it('cuts off an idle client holding the line, and serves the next one', async () => {
    const lab = await startLab('01-serial', ['--idle-timeout', '0.5']);
    const idle = await connect(lab.port);
    const next = await connect(lab.port);
    next.socket.write('my turn\n');
    await idle.waitForEnd();
    expect(idle.received().length).toBe(0);
    expect((await next.waitForBytes(8)).toString()).toBe('my turn\n');
    await lab.waitForLine(/disconnected \(idle timeout; received 0 B, sent 0 B/);
    await stopCleanly(lab);
  });

  it('exits 0 soon after SIGTERM while it waits in accept', async () => {
    const lab = await startLab('01-serial', ['--quiet']);
    const started = performance.now();
    await stopCleanly(lab);
    // The server notices within one poll() of 50 ms; this bound only catches a hang.
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('on SIGTERM resets the clients still queued, and lets the current one finish until its FIN', async () => {
    const lab = await startLab('01-serial', ['--quiet']);
    const current = await connect(lab.port);
    expect(await roundTrip(current, 'one\n')).toBe('one\n');
    const queued = await connect(lab.port);
    queued.socket.write('never served\n');
    await acceptQueueReaches(lab, 1);

    lab.child.kill('SIGTERM');
    await lab.waitForLine(/SIGTERM: no longer accepting/);
    // The listening socket is closed: the kernel resets the connection nobody accepted.
    await queued.closed;
    expect(queued.received().length).toBe(0);
    // The client being served is still served until it closes.
    expect(await roundTrip(current, 'still here\n')).toBe('still here\n');
    current.socket.end();
    await current.waitForEnd();
    // With nobody left to serve it exits by itself (a second signal would mean "force").
    expect(await exitOf(lab)).toEqual({ code: 0, signal: null });
    await lab.stop();
  });

  it('reports user errors in one line with exit status 2: a port in use, an IPv6 host', async () => {
    const occupier = net.createServer();
    await new Promise<void>((resolve) => occupier.listen(0, '127.0.0.1', resolve));
    try {
      const port = (occupier.address() as net.AddressInfo).port;
      const clash = await runEntry('01-serial', ['--port', String(port)]);
      expect(clash.code).toBe(2);
      expect(clash.stderr.trim().split('\n')).toEqual([
        `01-serial: cannot listen on 127.0.0.1:${port}: the port is already in use (pick another with PORT=… or --port)`,
      ]);
    } finally {
      occupier.close();
    }
    const ipv6 = await runEntry('01-serial', ['--port', '0', '--host', '::1']);
    expect(ipv6.code).toBe(2);
    expect(ipv6.stderr.trim().split('\n')).toHaveLength(1);
    expect(ipv6.stderr).not.toMatch(/^\s+at /m);
  });

  it('resolves a host name to its IPv4 address', async () => {
    const lab = await startLab('01-serial', ['--quiet', '--host', 'localhost']);
    expect(lab.host).toBe('127.0.0.1');
    const client = await connect(lab.port);
    expect(await roundTrip(client, 'hi\n')).toBe('hi\n');
    client.socket.end();
    await client.waitForEnd();
    await stopCleanly(lab);
  });
});
