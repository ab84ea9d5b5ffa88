/**
 * sd_notify (shared/notify.ts) as systemd would see it: the test plays the service manager,
 * binding the AF_UNIX datagram socket it names in $NOTIFY_SOCKET and asking for a watchdog. Each
 * lab, sandboxed, must say READY=1 once it listens, WATCHDOG=1 again and again from its loop, and
 * STOPPING=1 when SIGTERM starts its drain, then exit 0. And a loop stuck in --work-us must stop
 * saying WATCHDOG=1 until the work is done: that silence is what systemd's watchdog acts on.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { oneEventLoop } from '../bench/kit/labs.js';
import { stopAllLabs } from '../harness/launch.js';
import * as libc from '../shared/libc.js';
import { sockaddrUn } from '../shared/notify.js';
import { sandboxUnavailable } from '../shared/sandbox.js';
import { stopCleanly } from './helpers/exchange.js';
import { defaultVariantCases } from './helpers/labs.js';
import { closeAllClients, connect } from './helpers/tcp.js';
import { eventually } from './helpers/util.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-notify-'));
afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The service manager's end: a bound datagram socket, read without blocking. */
function listen(name: string): { path: string; received: () => string[]; close: () => void } {
  const socketPath = path.join(dir, name);
  const fd = libc.socket(libc.AF_UNIX, libc.SOCK_DGRAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  const { address, length } = sockaddrUn(socketPath);
  if (fd < 0 || libc.bind(fd, address, length) < 0) throw libc.callError('bind(AF_UNIX)', libc.errno());
  const messages: string[] = [];
  const buffer = new Uint8Array(4096);
  return {
    path: socketPath,
    received() {
      for (let n; (n = libc.recv(fd, buffer, buffer.length, 0)) > 0; ) messages.push(Buffer.from(buffer.subarray(0, n)).toString());
      return messages;
    },
    close: () => libc.close(fd),
  };
}

const sandbox = sandboxUnavailable() === undefined ? ['--sandbox'] : [];

describe.each(defaultVariantCases())('lab %s under systemd', (labCase) => {
  it(`says READY=1, keeps saying WATCHDOG=1, and STOPPING=1 on SIGTERM${sandbox.length ? ' (sandboxed)' : ''}`, async () => {
    const manager = listen(`${labCase.id}.sock`);
    try {
      const lab = await labCase.start(['--quiet', ...sandbox], { NOTIFY_SOCKET: manager.path, WATCHDOG_USEC: '200000' });
      await eventually(() => (manager.received().filter((m) => m === 'WATCHDOG=1').length >= 2 ? true : undefined), 20_000, 'two WATCHDOG=1');
      expect(manager.received()[0]).toBe(`READY=1\nMAINPID=${lab.pid}`);
      await stopCleanly(lab);
      expect(manager.received()).toContain('STOPPING=1');
    } finally {
      manager.close();
    }
  });
});

// The watchdog's point: a loop stuck in work stops vouching for itself. One lab whose only loop
// also runs the work (no pool, no children, no loop per core), blocked by --work-us.
const stuckable = defaultVariantCases((lab) => oneEventLoop(lab.traits) && lab.coresFlag === undefined).slice(0, 1);
describe.each(stuckable)('lab %s blocked by --work-us under systemd', (labCase) => {
  it('stops sending WATCHDOG=1 while its loop is stuck, and sends it again once the work is done', async () => {
    const manager = listen(`${labCase.id}-stuck.sock`);
    const intervalMs = 50; // WATCHDOG_USEC / 2
    const workUs = 2_000_000;
    try {
      const lab = await labCase.start(['--quiet', '--work-us', String(workUs)], { NOTIFY_SOCKET: manager.path, WATCHDOG_USEC: String(intervalMs * 2000) });
      const count = () => manager.received().filter((m) => m === 'WATCHDOG=1').length;
      await eventually(() => (count() >= 2 ? true : undefined), 20_000, 'two WATCHDOG=1');
      const client = await connect(lab.port);
      const before = count();
      const sent = performance.now();
      client.socket.write('x');
      await client.waitForBytes(1, 30_000);
      const stuckMs = performance.now() - sent;
      // While the chunk's work ran (about workUs: the work is a calibrated spin) a live loop would
      // have sent stuckMs / 50 (30 or more); at most one may have left just before the read and
      // one just after the work.
      expect(stuckMs).toBeGreaterThanOrEqual(1500);
      expect(count() - before).toBeLessThanOrEqual(2);
      const after = count();
      await eventually(() => (count() >= after + 2 ? true : undefined), 20_000, 'WATCHDOG=1 again after the work');
      client.socket.destroy();
      await stopCleanly(lab);
    } finally {
      manager.close();
    }
  });
});
