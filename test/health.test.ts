/**
 * Health checks (shared/health.ts, shared/probe.ts): `GET /healthz` framed once for http and files,
 * fed bytes with no socket; then every lab answering it for real, ready while it serves and 503
 * once its drain has begun; then the two probes against a loop blocked by --work-us, where the
 * TCP connect probe stays green and the echo probe goes red.
 */

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../harness/launch.js';
import { oneEventLoop } from '../bench/kit/labs.js';
import { processTree } from '../harness/processes.js';
import { connectionQueues } from '../harness/sockets.js';
import { respond, type Job, type ProtocolConfig } from '../shared/protocol.js';
import { createSession, type Session } from './helpers/conversation.js';
import { probe } from '../shared/probe.js';
import { NO_WORK, workSpec } from '../shared/work.js';
import { stopCleanly } from './helpers/exchange.js';
import { defaultVariantCases } from './helpers/labs.js';
import { closeAllClients, connect, type Client } from './helpers/tcp.js';
import { eventually } from './helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

/** Resolves once the server side of `client`'s connection has read every byte sent to it. */
const readByTheLab = (port: number, client: Client) =>
  eventually(() => (connectionQueues(port, client.socket.localPort!)?.serverUnread === 0 ? true : undefined), 20_000, 'the lab to read what was sent');

/** Whether `pid` still has a handler installed for SIGTERM (false once gone, too). */
function catchesSigterm(pid: number): boolean {
  try {
    const caught = /^SigCgt:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
    return (BigInt(`0x${caught}`) & (1n << 14n)) !== 0n; // SIGTERM is 15: bit 14
  } catch {
    return false;
  }
}

const READY = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 27\r\n\r\n{"live":true,"ready":true}\n';
const DRAINING =
  'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 28\r\nConnection: close\r\n\r\n{"live":true,"ready":false}\n';
const GET = 'GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n';

const replies = (session: Session, chunk: string) => {
  const step = session.receive(Buffer.from(chunk, 'latin1'));
  return { text: step.jobs.map((job) => Buffer.from(respond(job as Job, NO_WORK)).toString('latin1')).join(''), close: step.close };
};

describe.each<ProtocolConfig>([
  { protocol: 'http', maxHeaderBytes: 8192, maxBodyBytes: 1024 },
  { protocol: 'files', maxHeaderBytes: 8192, maxBodyBytes: 1024, root: '/nonexistent' },
])('GET /healthz in the $protocol conversation', (config) => {
  it('is 200 ready on a kept connection, a query string ignored, HEAD without the body, and no --work-us work', () => {
    const session = createSession(config);
    expect(replies(session, GET)).toEqual({ text: READY, close: false });
    expect(replies(session, 'GET /healthz?from=lb HTTP/1.1\r\nHost: probe\r\n\r\n').text).toBe(READY);
    expect(replies(session, 'HEAD /healthz HTTP/1.1\r\nHost: probe\r\n\r\n').text).toBe(READY.slice(0, READY.indexOf('{')));
    // A second of work per request would show here as a second: the probe costs none.
    const started = performance.now();
    const job = createSession(config).receive(Buffer.from(GET)).jobs[0]!;
    expect(Buffer.from(respond(job as Job, workSpec(1_000_000))).toString('latin1')).toBe(READY);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('is 503 not ready, and closes, for a request in progress when the drain begins', () => {
    const session = createSession(config);
    expect(replies(session, 'GET /healthz HTTP/1.1\r\n').text).toBe('');
    expect(session.stopAfterCurrent()).toBe(false);
    expect(replies(session, 'Host: probe\r\n\r\n')).toEqual({ text: DRAINING, close: true });
  });

  it('other paths and methods are not the health check', () => {
    for (const request of ['POST /healthz HTTP/1.1\r\nHost: probe\r\nContent-Length: 0\r\n\r\n', 'GET /healthz/x HTTP/1.1\r\nHost: probe\r\n\r\n']) {
      expect(createSession(config).receive(Buffer.from(request)).jobs.map((job) => job.kind)).toEqual([config.protocol === 'files' ? 'file' : 'http']);
    }
  });
});

describe.each(defaultVariantCases((lab) => lab.protocols.includes('http')))('lab %s', (labCase) => {
  it('answers /healthz ready while it serves, and 503 to a request in progress once SIGTERM starts the drain', async () => {
    const lab = await labCase.start(['--quiet', '--protocol', 'http']);
    const ready = await connect(lab.port);
    ready.socket.write(GET);
    expect((await ready.waitForBytes(READY.length)).toString('latin1')).toBe(READY);
    ready.socket.destroy();

    const draining = await connect(lab.port);
    draining.socket.write('GET /healthz HTTP/1.1\r\nHost: probe\r\n');
    // The head is in progress before the drain starts: the lab (or its child) has read it.
    await readByTheLab(lab.port, draining);
    const tcpBefore = await probe('tcp', { host: lab.host, port: lab.port, deadlineMs: 10_000 });
    expect(tcpBefore.ok).toBe(true);
    const exited = new Promise<number | null>((resolve) => lab.child.once('exit', resolve));
    lab.child.kill('SIGTERM');
    await lab.waitForLine(/SIGTERM: no longer accepting/, 20_000);
    // A child of a forking lab gets its own SIGTERM from the parent, and may take it after the
    // bytes below arrive: wait until every child has run its handler (a once-handler that ran is
    // gone, and the signal's bit leaves SigCgt in /proc/PID/status).
    for (const pid of processTree(lab.pid).slice(1)) await eventually(() => (catchesSigterm(pid) ? undefined : true), 20_000, `child ${pid} to take SIGTERM`);
    draining.socket.write('\r\n');
    expect((await draining.waitForEnd()).toString('latin1')).toBe(DRAINING);
    // The listening socket closed with the drain: a new probe is refused outright.
    expect(await probe('tcp', { host: lab.host, port: lab.port, deadlineMs: 10_000 })).toMatchObject({ ok: false, detail: 'refused' });
    expect(await exited).toBe(0);
    await lab.stop();
  });
});

// One loop that also does the work: while a chunk's --work-us runs, the loop answers no one.
const blockable = defaultVariantCases((lab) => oneEventLoop(lab.traits) && lab.coresFlag === undefined).slice(0, 1);
describe.each(blockable)('probes against lab %s blocked by --work-us', (labCase) => {
  it("the TCP connect probe stays green while the echo probe goes red, and the blocked client's echo still comes once the work is done", async () => {
    const workUs = 2_000_000;
    const lab = await labCase.start(['--quiet', '--work-us', String(workUs)]);
    const target = { host: lab.host, port: lab.port, deadlineMs: 10_000 };
    const busy = await connect(lab.port);
    busy.socket.write('x');
    // Read means the work has begun: the loop reads a chunk and works on it in one go.
    await readByTheLab(lab.port, busy);
    const short = { ...target, deadlineMs: 500 };
    const [tcp, echo] = await Promise.all([probe('tcp', short), probe('echo', short)]);
    expect(tcp).toMatchObject({ ok: true, detail: 'connected' });
    expect(echo).toMatchObject({ ok: false, detail: 'no answer within 500 ms' });
    await busy.waitForBytes(1, 30_000);
    busy.socket.destroy();
    await stopCleanly(lab);
  });
});
