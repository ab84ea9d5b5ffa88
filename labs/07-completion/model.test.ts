/**
 * Lab 07's own truths, on its real entry over real TCP: it moves bytes through io_uring and not
 * through read/write/epoll (counted with strace); `--submit each` makes one io_uring_enter per
 * entry and `--submit batch` far fewer; `--sqpoll` has its kernel thread; and a buffer reused
 * before its completion (`--reuse-early`) really corrupts the echo, while the correct code does not.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startLab, stopAllLabs } from '../../harness/launch.js';
import { countSystemCalls, straceUnavailable } from '../../bench/syscalls/trace.js';
import { closeAll, openConnections, runRoundTrips } from '../../bench/syscalls/workload.js';
import { stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';
import { randomPayload } from '../../test/helpers/util.js';

const LAB_ID = '07-completion';
const CASES = labCases((lab) => lab.id === LAB_ID);
const MiB = 1024 * 1024;

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Names of the server's threads (the kernel's io_uring threads among them: iou-sqp-PID, iou-wrk-PID). */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
}

/** Sends `payload` in one go, half-closes, and returns everything echoed until the server's FIN. */
async function echoOf(port: number, payload: Buffer): Promise<Buffer> {
  const client = await connect(port);
  client.socket.end(payload);
  return client.waitForEnd();
}

const WORKLOAD = { connections: 10, roundTrips: 100, size: 64, churn: 0 };
const BYTE_MOVERS = ['read', 'write', 'recvfrom', 'sendto', 'recvmsg', 'sendmsg', 'readv', 'writev', 'epoll_wait', 'poll'];

describe.skipIf(straceUnavailable() !== undefined).each(CASES)('lab %s, under strace', ({ variant, start }) => {
  it(`${WORKLOAD.connections} connections × ${WORKLOAD.roundTrips} round trips: bytes move through io_uring_enter, never read/write/epoll_wait`, { timeout: 120_000 }, async () => {
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await start(['--quiet', ...SANDBOXED]);
    const connections = await openConnections(lab.port, '127.0.0.1', WORKLOAD);
    const calls = await countSystemCalls(lab.pid, () => runRoundTrips(connections, WORKLOAD));
    await closeAll(connections);
    const roundTrips = WORKLOAD.connections * WORKLOAD.roundTrips;
    const perRoundTrip = (name: string) => (calls[name]?.calls ?? 0) / roundTrips;
    const movers = BYTE_MOVERS.reduce((total, name) => total + perRoundTrip(name), 0);
    const enters = perRoundTrip('io_uring_enter');
    // Node's own loop (epoll_pwait) turns now and then, and may read its signal pipe: a few calls in all.
    expect(movers, JSON.stringify(calls)).toBeLessThan(0.05);
    if (variant.args.includes('each')) {
      // One call per entry: each round trip's SEND and its re-armed RECV are two entries (the
      // first round trip's may fall before strace attached).
      expect(enters, JSON.stringify(calls)).toBeGreaterThanOrEqual(1.9);
    } else {
      // One call per loop turn for every entry of the turn: at most one per round trip (a round
      // trip is one RECV completion and one SEND completion, reaped in one turn or two).
      expect(enters, JSON.stringify(calls)).toBeLessThanOrEqual(1);
      expect(enters).toBeGreaterThan(0);
    }
    await stopCleanly(lab);
  });
});

describe('lab 07, its kernel thread', () => {
  it('--sqpoll runs a kernel submission thread (iou-sqp-PID) in the server; without it there is none', async () => {
    const withThread = await startLab(LAB_ID, ['--quiet', '--sqpoll']);
    expect(threadNames(withThread.pid)).toContain(`iou-sqp-${withThread.pid}`);
    const plain = await startLab(LAB_ID, ['--quiet']);
    expect(threadNames(plain.pid).filter((name) => name.startsWith('iou-sqp'))).toEqual([]);
    await stopCleanly(withThread);
    await stopCleanly(plain);
  });
});

describe('lab 07, buffer ownership', () => {
  it('--reuse-early (a send buffer reused before its completion) corrupts a 1 MiB echo; the same echo without it is exact', { timeout: 60_000 }, async () => {
    const payload = randomPayload(1 * MiB, 0x07);
    const buggy = await startLab(LAB_ID, ['--quiet', '--reuse-early', '--submit', 'batch']);
    expect(buggy.output().stdout).toContain('--reuse-early: a demonstration of a bug');
    const corrupted = await echoOf(buggy.port, payload);
    // The echo is not what was sent: bytes of later replies stand where earlier ones were.
    expect(sha256(corrupted)).not.toBe(sha256(payload));
    await stopCleanly(buggy);

    const correct = await startLab(LAB_ID, ['--quiet', '--submit', 'batch']);
    const echoed = await echoOf(correct.port, payload);
    expect(echoed.length).toBe(payload.length);
    expect(sha256(echoed)).toBe(sha256(payload));
    await stopCleanly(correct);
  });
});
