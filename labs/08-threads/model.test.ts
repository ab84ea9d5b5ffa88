/**
 * Lab 08's model, shown with its real entry over real TCP and read from /proc: a thread per
 * client, born at its connect and gone when it leaves; a prethreaded pool whose thread count never
 * moves and whose client N+1 waits in the kernel accept queue; threads asleep in read() that a
 * SIGTERM still ends within the deadline; and the trap behind that: close() from another thread
 * does not wake a thread asleep in read(), shutdown() does. The tests every lab shares are in
 * test/labs.test.ts and test/robust/ (chat 2 there is this model's member that never reads).
 */

import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot, startLab, stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { listenQueue } from '../../harness/sockets.js';
import { roundTrip, stopCleanly } from '../../test/helpers/exchange.js';
import { closeAllClients, connect, type Client } from '../../test/helpers/tcp.js';
import { eventually } from '../../test/helpers/util.js';
import { waitForExit } from '../../test/robust/helpers/nothing-lost.js';
import { threadCount } from '../../test/robust/helpers/observe.js';
import { labInfo } from '../index.js';

const LAB = labInfo('08-threads');

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

/** The system call each of the process's threads is asleep in, by name (/proc/PID/task/TID/comm and .../syscall). */
function sleepingIn(pid: number, comm: string): number[] {
  const calls: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== comm) continue;
      calls.push(Number(readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]));
    } catch {
      // the thread has just ended
    }
  }
  return calls;
}

/** read(2)'s number: the kernel numbers system calls per architecture. */
const READ_CALL = process.arch === 'arm64' ? 63 : 0;

/** The thread count once it has held still for a moment (a thread that ended is reaped a little later). */
function steadyThreads(pid: number): Promise<number> {
  let last = -1;
  let since = 0;
  return eventually(() => {
    const now = threadCount(pid);
    if (now !== last) {
      last = now;
      since = performance.now();
      return undefined;
    }
    return performance.now() - since >= 300 ? now : undefined;
  }, 20_000, 'the thread count to hold still');
}

/**
 * The steady thread count after one client has come and gone: the first client makes the process
 * start what stays for its lifetime (Node's own helper threads).
 */
async function warmedThreads(lab: LabProcess): Promise<number> {
  const warm = await connect(lab.port);
  expect(await roundTrip(warm, 'warm\n')).toBe('warm\n');
  warm.socket.end();
  await warm.waitForEnd();
  return steadyThreads(lab.pid);
}

describe('lab 08, per connection', () => {
  it('5 clients add exactly 5 threads, each asleep in read(); they are gone within 5 s of the clients leaving', async () => {
    const lab = await startLab(LAB.id, ['--quiet', '--threads', 'per-connection']);
    const baseline = await warmedThreads(lab);

    const clients: Client[] = [];
    for (let i = 0; i < 5; i++) clients.push(await connect(lab.port));
    await Promise.all(clients.map(async (client, i) => expect(await roundTrip(client, `client ${i}\n`)).toBe(`client ${i}\n`)));
    expect(threadCount(lab.pid), 'threads with 5 clients').toBe(baseline + 5);
    // Each client's thread is asleep in read(), waiting for its client: the model's whole state.
    await eventually(() => (sleepingIn(lab.pid, 'lab08 conn').filter((call) => call === READ_CALL).length === 5 || undefined), 10_000, '5 threads asleep in read()');

    for (const client of clients) client.socket.end();
    await Promise.all(clients.map((client) => client.waitForEnd()));
    const leftAt = performance.now();
    await eventually(() => (threadCount(lab.pid) === baseline || undefined), 5000, 'the thread count back to its baseline');
    expect(performance.now() - leftAt).toBeLessThan(5000);
    await stopCleanly(lab);
  });

  it('SIGTERM with 3 clients asleep in read(): exit 0 within the shutdown deadline plus one second', async () => {
    const deadlineMs = 1000;
    const lab = await startLab(LAB.id, ['--quiet', '--shutdown-timeout', String(deadlineMs / 1000)]);
    const clients: Client[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await connect(lab.port);
      expect(await roundTrip(client, `idle ${i}\n`)).toBe(`idle ${i}\n`);
      clients.push(client);
    }
    await eventually(() => (sleepingIn(lab.pid, 'lab08 conn').filter((call) => call === READ_CALL).length === 3 || undefined), 10_000, '3 threads asleep in read()');
    const termAt = performance.now();
    lab.child.kill('SIGTERM');
    const { code, signal } = await waitForExit(lab, deadlineMs + 10_000);
    const exitMs = performance.now() - termAt;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // An echo stream is its client's to end: the threads sleep on until the deadline's shutdown(2).
    expect(exitMs).toBeGreaterThanOrEqual(deadlineMs - 100);
    expect(exitMs).toBeLessThan(deadlineMs + 1000);
    for (const client of clients) await client.waitForEnd();
    await lab.stop();
  });
});

describe('lab 08, prethreaded', () => {
  it('--threads 2: the thread count never moves; client 3 waits in the accept queue and is answered only when one of the first 2 leaves', async () => {
    const lab = await startLab(LAB.id, ['--quiet', '--threads', '2']);
    const baseline = await warmedThreads(lab);
    expect(readdirSync(`/proc/${lab.pid}/task`).filter((tid) => readFileSync(`/proc/${lab.pid}/task/${tid}/comm`, 'utf8').startsWith('lab08 pool')).length).toBe(2);

    const first = await connect(lab.port);
    const second = await connect(lab.port);
    expect(await roundTrip(first, 'one\n')).toBe('one\n');
    expect(await roundTrip(second, 'two\n')).toBe('two\n');
    const third = await connect(lab.port);
    third.socket.write('three\n');
    // Connected as far as its kernel can tell, and waiting in the listening socket's queue.
    await eventually(() => ((listenQueue(lab.port)?.acceptQueueDepth ?? 0) === 1 || undefined), 10_000, 'client 3 in the accept queue');
    expect(await roundTrip(first, 'still one\n')).toBe('still one\n');
    expect(third.received().length).toBe(0);
    expect(threadCount(lab.pid), 'threads with 3 clients').toBe(baseline);

    second.socket.end();
    await second.waitForEnd();
    expect((await third.waitForBytes(6)).toString()).toBe('three\n');
    expect(listenQueue(lab.port)?.acceptQueueDepth).toBe(0);
    expect(threadCount(lab.pid), 'threads after the handover').toBe(baseline);
    first.socket.end();
    third.socket.end();
    await Promise.all([first.waitForEnd(), third.waitForEnd()]);
    await stopCleanly(lab);
  });
});

/**
 * The trap, without the lab: a worker thread asleep in a blocking read() through koffi, on a TCP
 * connection to a server in this process. close() of its descriptor from this thread leaves it
 * asleep (Linux: the read holds the file, so the socket stays open); shutdown() wakes it at once.
 */
describe('lab 08: what wakes a thread asleep in read()', () => {
  it('close() from another thread does not; shutdown() does', async () => {
    const libc = await import('../../shared/libc.js');
    const server = net.createServer(() => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const peers: net.Socket[] = [];
    server.on('connection', (socket) => peers.push(socket));

    const sleeper = async (): Promise<{ fd: number; returned: Promise<number>; thread: Worker }> => {
      const fd = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_CLOEXEC, 0);
      expect(libc.connect(fd, libc.sockaddrIn('127.0.0.1', port), 16)).toBe(0);
      // The compiled bindings: a worker thread runs plain JavaScript.
      const libcUrl = pathToFileURL(path.join(repoRoot, 'dist', 'shared', 'libc.js')).href;
      const thread = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
         import(workerData.libcUrl).then((libc) => {
           parentPort.postMessage('asleep');
           parentPort.postMessage(libc.read(workerData.fd, Buffer.alloc(16), 16));
         });`,
        { eval: true, workerData: { fd, libcUrl } },
      );
      const messages: unknown[] = [];
      const returned = new Promise<number>((resolve) =>
        thread.on('message', (message) => {
          messages.push(message);
          if (typeof message === 'number') resolve(message);
        }),
      );
      await eventually(() => messages.includes('asleep') || undefined, 10_000, 'the thread to start');
      return { fd, returned, thread };
    };
    /** Some thread of this process is asleep in read() on `fd` (/proc/self/task/TID/syscall: the number, then the arguments). */
    const asleepIn = (fd: number) =>
      readdirSync('/proc/self/task').some((tid) => {
        try {
          const [call, first] = readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ');
          return Number(call) === READ_CALL && Number(first) === fd;
        } catch {
          return false;
        }
      }) || undefined;
    const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise, new Promise<'still asleep'>((resolve) => setTimeout(() => resolve('still asleep'), ms))]);

    // close(): the descriptor number is gone, the read sleeps on.
    const closed = await sleeper();
    await eventually(() => asleepIn(closed.fd), 10_000, 'the thread asleep in read()');
    expect(libc.close(closed.fd)).toBe(0);
    expect(await within(closed.returned, 1000)).toBe('still asleep');
    // Only the peer's FIN ends it now.
    for (const peer of peers.splice(0)) peer.end();
    expect(await within(closed.returned, 10_000)).toBe(0);

    // shutdown(): the socket itself is shut, and the read returns 0 at once.
    const shut = await sleeper();
    await eventually(() => asleepIn(shut.fd), 10_000, 'the thread asleep in read()');
    expect(libc.shutdown(shut.fd, libc.SHUT_RDWR)).toBe(0);
    expect(await within(shut.returned, 1000)).toBe(0);
    libc.close(shut.fd);
    await Promise.all([closed.thread.terminate(), shut.thread.terminate()]);
    for (const peer of peers) peer.destroy();
    server.close();
  });
});
