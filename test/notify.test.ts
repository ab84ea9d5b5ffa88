/**
 * sd_notify (shared/notify.ts) as systemd would see it: the test plays the service manager,
 * binding the AF_UNIX datagram socket it names in $NOTIFY_SOCKET and asking for a watchdog. Each
 * lab, sandboxed, must say READY=1 once it listens, WATCHDOG=1 again and again from its loop, and
 * STOPPING=1 when SIGTERM starts its drain, then exit 0.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../harness/launch.js';
import * as libc from '../shared/libc.js';
import { sockaddrUn } from '../shared/notify.js';
import { sandboxUnavailable } from '../shared/sandbox.js';
import { stopCleanly } from './helpers/exchange.js';
import { defaultVariantCases } from './helpers/labs.js';
import { eventually } from './helpers/util.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-notify-'));
afterEach(() => stopAllLabs());
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
