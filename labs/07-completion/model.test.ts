/**
 * Lab 07's own truths, on its real entry over real TCP: it moves bytes through io_uring and not
 * through read/write/epoll (counted with strace); `--submit each` makes one io_uring_enter per
 * entry and `--submit batch` far fewer; `--sqpoll` has its kernel thread; a buffer reused
 * before its completion (`--reuse-early`) really corrupts the echo, while the correct code does
 * not; and files (issue 31), in both `--copy` ways, started as `make lab-07 PROTOCOL=files
 * ROOT=dir` starts it: a 64 MiB file byte-exact, a Range, and the file's bytes moved by ring
 * entries, not by pread/sendfile/write. (Every hostile path, HEAD, pipelining, a stalled client
 * and 503 are test/robust/files.test.ts's, for every lab that serves files.)
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLab, stopAllLabs } from '../../harness/launch.js';
import { countSystemCalls, straceUnavailable } from '../../bench/syscalls/trace.js';
import { closeAll, openConnections, runRoundTrips } from '../../bench/syscalls/workload.js';
import { stopCleanly } from '../../test/helpers/exchange.js';
import { labCases, SANDBOXED } from '../../test/helpers/labs.js';
import { closeAllClients, connect } from '../../test/helpers/tcp.js';
import { randomPayload } from '../../test/helpers/util.js';
import { labFlags } from '../make-flags.js';
import { labInfo } from '../index.js';
import { OP, refusedOperations, RING_COPIES } from './ring.js';

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
    // The kernel names its thread when the thread first runs, which on a busy machine can come
    // after the lab is listening (until then it is a "node" like the others): wait for the name.
    await vi.waitFor(() => expect(threadNames(withThread.pid)).toContain(`iou-sqp-${withThread.pid}`), { timeout: 10_000, interval: 50 });
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

/** One GET on its own connection: the status, the head's fields, and the body's SHA-256 and length (64 MiB is hashed as it streams). */
function fetchFile(port: number, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; sha256: string; length: number }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: target, headers, agent: false }, (response) => {
      const hash = createHash('sha256');
      let length = 0;
      response.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, sha256: hash.digest('hex'), length }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

describe('lab 07, files: the one line that says which operation this kernel refuses', () => {
  it('names each missing opcode and the kernel that brought it; none missing, no line', () => {
    const everything = new Set([OP.OPENAT, OP.STATX, OP.READ, OP.SPLICE, OP.POLL_ADD]);
    expect(refusedOperations(everything, 'splice')).toBeUndefined();
    const noSplice = new Set([OP.OPENAT, OP.STATX, OP.READ, OP.POLL_ADD]);
    expect(refusedOperations(noSplice, 'read-send')).toBeUndefined();
    expect(refusedOperations(noSplice, 'splice')).toBe(
      "--protocol files --copy splice: this kernel's io_uring refuses IORING_OP_SPLICE (5.7) (IORING_REGISTER_PROBE says unsupported: an older kernel; try --copy read-send)",
    );
    expect(refusedOperations(undefined, 'read-send')).toBe(
      "--protocol files: this kernel's io_uring has no IORING_REGISTER_PROBE (Linux 5.6), so none of IORING_OP_OPENAT (Linux 5.6), IORING_OP_STATX (5.6), IORING_OP_READ (5.6)",
    );
  });
});

/** The 64 MiB file both --copy ways serve. */
const big = randomBytes(64 * MiB);

describe.each(RING_COPIES)('lab 07, files, --copy %s (issue 31)', (copy) => {
  let base: string;
  let root: string;
  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), 'lab07-files-'));
    root = path.join(base, 'root');
    mkdirSync(root);
    writeFileSync(path.join(root, 'big.bin'), big);
    writeFileSync(path.join(base, 'secret.txt'), 'SECRET');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  /** The lab as `make lab-07 PROTOCOL=files ROOT=dir ARGS='--copy …'` starts it (labs/run.ts's flags). */
  const started = () => startLab(LAB_ID, labFlags(labInfo(LAB_ID), { PROTOCOL: 'files', ROOT: root, QUIET: '1', ARGS: `--copy ${copy}` }));

  it('make lab-07 PROTOCOL=files ROOT=dir: a 64 MiB file byte-exact, a Range 206 with its bytes, a path out of the root refused', { timeout: 60_000 }, async () => {
    const lab = await started();
    const whole = await fetchFile(lab.port, '/big.bin');
    expect(whole.status).toBe(200);
    expect(whole.length).toBe(big.length);
    expect(whole.sha256).toBe(sha256(big));
    const range = await fetchFile(lab.port, '/big.bin', { Range: 'bytes=40000000-40999999' });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 40000000-40999999/${big.length}`);
    expect(range.sha256).toBe(sha256(big.subarray(40_000_000, 41_000_000)));
    expect((await fetchFile(lab.port, '/%2e%2e/secret.txt')).status).toBe(400);
    await stopCleanly(lab);
  });

  it.skipIf(straceUnavailable() !== undefined)('a 64 MiB file moves by ring entries: io_uring_enter, and no pread, sendfile, splice, read or write of its bytes (strace)', { timeout: 120_000 }, async () => {
    const lab = await started();
    let got: Awaited<ReturnType<typeof fetchFile>> | undefined;
    const calls = await countSystemCalls(lab.pid, async () => {
      got = await fetchFile(lab.port, '/big.bin');
    });
    expect(got!.sha256).toBe(sha256(big));
    const count = (...names: string[]) => names.reduce((total, name) => total + (calls[name]?.calls ?? 0), 0);
    // 1,024 chunks of 64 KiB: as system calls they would be thousands; Node's own loop reads its signal pipe now and then.
    expect(count('pread64', 'sendfile', 'splice', 'read', 'write', 'writev', 'sendto'), JSON.stringify(calls)).toBeLessThan(20);
    expect(count('io_uring_enter'), JSON.stringify(calls)).toBeGreaterThan(0);
    await stopCleanly(lab);
  });
});
