/**
 * Lab 06's own truths, beyond the suites every lab passes: N loops really exist, each policy puts
 * its listening sockets where it says, the acceptor deals connections out evenly, and a SIGTERM
 * drains every loop. Real server (the compiled entry) on port 0, real TCP, exact bytes.
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { tcpRows } from '../../harness/sockets.js';
import { startLab, stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { closeAllClients, connect, type Client } from '../../test/helpers/tcp.js';
import { eventually } from '../../test/helpers/util.js';
import { labInfo } from '../index.js';
import { SANDBOXED } from '../../test/helpers/labs.js';

const LAB = '06-loop-per-core';
const POLICIES = labInfo(LAB).variants;

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The names of the threads of `pid` that are lab 06's loops, from /proc/PID/task/TID/comm. */
function loopThreads(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`)
    .map((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      } catch {
        return ''; // the thread ended between the listing and the read
      }
    })
    .filter((name) => /^lab06 worker \d+$/.test(name))
    .sort();
}

const listeningSockets = (port: number) => tcpRows(['tcp']).filter((row) => row.state === 'LISTEN' && row.localPort === port).length;

/** The shutdown summary: per worker, connections served and round trips. */
function summary(lab: LabProcess): Map<number, { connections: number; roundTrips: number }> {
  const lines = [...lab.output().stdout.matchAll(/worker (\d+): (\d+) connections?, (\d+) round trips?/g)];
  return new Map(lines.map(([, worker, connections, roundTrips]) => [Number(worker), { connections: Number(connections), roundTrips: Number(roundTrips) }]));
}

async function stopCleanly(lab: LabProcess): Promise<void> {
  expect(await lab.stop('SIGTERM'), 'exit after SIGTERM').toEqual({ code: 0, signal: null });
}

function exited(lab: LabProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { child } = lab;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lab 06 did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** Sends `payload`, half-closes, and returns everything echoed up to the server's FIN. */
async function echoWhole(client: Client, payload: Buffer): Promise<Buffer> {
  client.socket.end(payload);
  return client.waitForEnd();
}

describe.each(POLICIES)('lab 06, --balance $name', ({ name: policy, args }) => {
  it('echoes every client exactly, 20 clients at once, and counts them in the summary', async () => {
    // This lab's one case of its own suite under its sandbox (SANDBOXED: --sandbox, a call off the list kills it).
    const lab = await startLab(LAB, ['--quiet', '--workers', '2', ...args, ...SANDBOXED]);
    const payloads = Array.from({ length: 20 }, (_, i) => Buffer.alloc(64 * 1024 + i, `client ${i} `));
    const clients = await Promise.all(payloads.map(() => connect(lab.port)));
    const echoed = await Promise.all(clients.map((client, i) => echoWhole(client, payloads[i]!)));
    for (const [i, bytes] of echoed.entries()) {
      expect(bytes.length, `client ${i}`).toBe(payloads[i]!.length);
      expect(sha256(bytes), `client ${i}`).toBe(sha256(payloads[i]!));
    }
    await stopCleanly(lab);
    const counts = summary(lab);
    expect([...counts.keys()].sort()).toEqual([0, 1]);
    expect([...counts.values()].reduce((sum, c) => sum + c.connections, 0)).toBe(20);
  });

  it(`runs --workers 3 loops as three named threads, with ${policy === 'reuseport' ? 'three LISTEN sockets' : 'one LISTEN socket'} on the port`, async () => {
    const lab = await startLab(LAB, ['--quiet', '--workers', '3', ...args]);
    expect(loopThreads(lab.pid)).toEqual(['lab06 worker 0', 'lab06 worker 1', 'lab06 worker 2']);
    expect(listeningSockets(lab.port)).toBe(policy === 'reuseport' ? 3 : 1);
    // Still one process: the loops are threads of the server, not children.
    expect(readFileSync(`/proc/${lab.pid}/task/${lab.pid}/children`, 'utf8').trim()).toBe('');
    await stopCleanly(lab);
    expect(listeningSockets(lab.port)).toBe(0);
  });

  it('SIGTERM: refuses new clients at once, lets the in-flight transfer on every loop finish, exits 0', async () => {
    const lab = await startLab(LAB, ['--quiet', '--workers', '2', '--shutdown-timeout', '20', ...args]);
    // Enough clients that every loop has some, whatever the policy (handoff deals 4 to each).
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(lab.port)));
    const first = Buffer.alloc(32 * 1024, 'a');
    const rest = Buffer.alloc(256 * 1024, 'b');
    await Promise.all(
      clients.map(async (client) => {
        client.socket.write(first);
        await client.waitForBytes(first.length);
      }),
    );
    lab.child.kill('SIGTERM');
    await lab.waitForLine(/SIGTERM: no longer accepting/, 10_000);
    await expect(connect(lab.port), 'a new client after SIGTERM').rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const echoed = await Promise.all(clients.map((client) => echoWhole(client, rest)));
    for (const bytes of echoed) expect(sha256(bytes)).toBe(sha256(Buffer.concat([first, rest])));
    // The one SIGTERM is enough: the server exits by itself once its last client is done.
    expect(await exited(lab, 30_000)).toEqual({ code: 0, signal: null });
    const counts = summary(lab);
    expect([...counts.values()].reduce((sum, c) => sum + c.connections, 0)).toBe(8);
    if (policy === 'handoff') expect([...counts.values()].map((c) => c.connections)).toEqual([4, 4]);
  });

  it('--max-conns 4 holds for the whole server, across loops: the fifth client gets nothing echoed', async () => {
    const lab = await startLab(LAB, ['--quiet', '--workers', '2', '--max-conns', '4', ...args]);
    const served = await Promise.all(Array.from({ length: 4 }, () => connect(lab.port)));
    for (const [i, client] of served.entries()) {
      client.socket.write(`in ${i}\n`);
      expect((await client.waitForBytes(`in ${i}\n`.length)).toString()).toBe(`in ${i}\n`);
    }
    const beyond = await Promise.all(Array.from({ length: 4 }, () => connect(lab.port)));
    for (const client of beyond) {
      client.socket.write('let me in\n');
      expect((await client.waitForEnd()).length, 'a refused client gets nothing').toBe(0);
    }
    // A freed slot serves again, once the server has seen the client go (a retry until then is
    // refused, as it should be).
    served[0]!.socket.end();
    await served[0]!.waitForEnd();
    const deadline = Date.now() + 10_000;
    let echo = '';
    while (echo !== 'again\n' && Date.now() < deadline) {
      const client = await connect(lab.port);
      echo = (await echoWhole(client, Buffer.from('again\n'))).toString();
    }
    expect(echo).toBe('again\n');
    for (const client of served.slice(1)) client.socket.end();
    await stopCleanly(lab);
  });
});

describe('lab 06, --balance handoff', () => {
  it('deals connections out in strict turn (round-robin in the acceptor): client k, one after another, goes to loop k mod 2', { timeout: 120_000 }, async () => {
    const workers = 2;
    const lab = await startLab(LAB, ['--workers', String(workers), '--balance', 'handoff']);
    // One client at a time, so the order the acceptor sees is the order they were opened in.
    const ports: number[] = [];
    for (let k = 0; k < 40; k++) {
      const client = await connect(lab.port);
      ports.push(client.socket.localPort!);
      expect((await echoWhole(client, Buffer.from(`${k}\n`))).toString()).toBe(`${k}\n`);
    }
    // Each loop's line names it: "[... worker W] client 127.0.0.1:PORT connected".
    await eventually(() => (ports.every((port) => lab.output().stdout.includes(`:${port} connected`)) ? true : undefined), 10_000, 'every connection logged');
    const loopOf = new Map([...lab.output().stdout.matchAll(/worker (\d+)\] client 127\.0\.0\.1:(\d+) connected/g)].map(([, w, p]) => [Number(p), Number(w)]));
    expect(ports.map((port) => loopOf.get(port))).toEqual(ports.map((_, k) => k % workers));
    await stopCleanly(lab);
    const counts = [...summary(lab).values()].map((c) => c.connections);
    expect(counts).toEqual([20, 20]);
  });
});

describe('lab 06, a loop that dies', () => {
  /** The worker's test-only switch (worker.ts): an echoed chunk containing this kills its loop. */
  const CRASH_MARKER_ENV = 'IOLAB_TEST_LOOP_CRASH_MARKER';
  const marker = 'PLEASE-CRASH-THIS-LOOP';

  it('closes only its own clients; a new loop takes its place and serves', { timeout: 60_000 }, async () => {
    // handoff deals in turn, so the clients' loops are known: 0, 1, 0.
    const lab = await startLab(LAB, ['--workers', '2', '--balance', 'handoff'], { [CRASH_MARKER_ENV]: marker });
    const [onZero, onOne, victim] = [await connect(lab.port), await connect(lab.port), await connect(lab.port)];
    for (const [i, client] of [onZero, onOne, victim].entries()) {
      client!.socket.write(`hello ${i}\n`);
      expect((await client!.waitForBytes(`hello ${i}\n`.length)).toString()).toBe(`hello ${i}\n`);
    }
    await lab.waitForLine(new RegExp(`worker 0\\] client 127\\.0\\.0\\.1:${victim!.socket.localPort} connected`));

    victim!.socket.write(`${marker}\n`);
    // Loop 0's clients are closed with it: the victim and the other client it served.
    await victim!.waitForEnd();
    await onZero!.waitForEnd();
    await eventually(() => (/worker 0 ended with exit code 1; its clients are closed/.test(lab.output().stderr) ? true : undefined), 10_000, 'the death to be reported');
    // Loop 1's client never noticed.
    onOne!.socket.write('still here\n');
    expect((await onOne!.waitForBytes('hello 1\nstill here\n'.length)).toString()).toBe('hello 1\nstill here\n');
    // A new loop 0 is up, and the server serves new clients on both loops.
    await eventually(() => (lab.output().stdout.match(/worker 0 ready/g)?.length === 2 ? true : undefined), 20_000, 'a new worker 0');
    expect(loopThreads(lab.pid)).toEqual(['lab06 worker 0', 'lab06 worker 1']);
    for (let i = 0; i < 2; i++) {
      const client = await connect(lab.port);
      expect((await echoWhole(client, Buffer.from(`after ${i}\n`))).toString()).toBe(`after ${i}\n`);
    }
    onOne!.socket.end();
    await stopCleanly(lab);
  });

  it('a burst of clients handed to it while it dies: every one is served by a live loop, none left hanging', { timeout: 60_000 }, async () => {
    // The crash stalls loop 0 before it throws (worker.ts), so the connections the acceptor deals
    // to it meanwhile wait in its message queue, unadopted, when it dies.
    const lab = await startLab(LAB, ['--workers', '2', '--balance', 'handoff'], { [CRASH_MARKER_ENV]: marker });
    const victim = await connect(lab.port); // the first client goes to loop 0
    victim.socket.write(`${marker}\n`);
    // The echo leaves before the stall begins: from here loop 0 takes nothing until it dies.
    await victim.waitForBytes(marker.length + 1);
    const burst = await Promise.all(Array.from({ length: 20 }, () => connect(lab.port)));
    const echoed = await Promise.all(
      burst.map((client, i) => echoWhole(client, Buffer.from(`burst ${i}\n`)).catch((error: Error) => `client ${i} hung: ${error.message}`)),
    );
    expect(echoed.map(String)).toEqual(burst.map((_, i) => `burst ${i}\n`));
    // And the case did what it says: some of them were in transit to the loop when it died.
    const handedOn = /worker 0 ended with exit code 1;.*; \d+ connections handed to it and not yet taken go to the live loops/;
    await eventually(() => (handedOn.test(lab.output().stderr) ? true : undefined), 10_000, 'the handed-on connections to be reported');
    await victim.waitForEnd();
    await eventually(() => (lab.output().stdout.match(/worker 0 ready/g)?.length === 2 ? true : undefined), 20_000, 'a new worker 0');
    await stopCleanly(lab);
  });
});
