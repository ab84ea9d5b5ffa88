/**
 * Robust suite, files protocol: every lab that lists `files` (and each `--copy` it offers) is
 * served a tree with a secret file placed beside its root, and tried with every hostile path of
 * test/helpers/hostile-paths.ts plus the ones only the file system can answer (symlinks out of the
 * root, double encoding). Each must get 400, 403 or 404 and a log line, and no response may ever
 * hold a byte of the secret. Then the send path itself: byte-exact whole files and ranges; a client
 * that stops reading a 256 MiB file holds a bounded amount of server memory; a file truncated
 * while it is being sent ends that response (and only that connection) cleanly.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExecutable, stopAllLabs, type LabProcess } from '../../harness/launch.js';
import { fileURLToPath } from 'node:url';
import { openFds, treeUsage } from '../../harness/processes.js';
import { connectionQueues } from '../../harness/sockets.js';
import { createSession } from '../helpers/conversation.js';
import { servingCases, type LabCase } from '../helpers/labs.js';
import { HOSTILE_TARGETS } from '../helpers/hostile-paths.js';
import { eventually } from '../helpers/util.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { stopCleanly } from './helpers/nothing-lost.js';

const MiB = 1024 * 1024;
/** The file a stalled client asks for: sparse, so it costs no disk, and far beyond any socket buffer. */
const HUGE_BYTES = 256 * MiB;
/**
 * What a client that stopped reading may cost the server, on top of its memory before: a few
 * chunks and socket buffers' worth, plus whatever the heap of the Node process that read them
 * has not yet given back (lab 02's fresh child grew 51.7 MiB once on a busy machine, where most
 * runs stay under 48). Buffering the whole 256 MiB file, as an unchecked socket.write loop
 * would (254 MiB, measured with the drain wait removed), is far beyond it.
 */
const STALLED_GROWTH_LIMIT = 96 * MiB;
/** Stalled means: this many polls (20 ms apart) with the send queue unmoved... */
const STALL_SAMPLES = 10;
/** ...and at most this much server CPU over them (timers and bounded waits cost a little). */
const STALL_CPU_MS = 20;

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

let base: string;
let root: string;
const secret = `SECRET-${randomBytes(12).toString('hex')}`;
const big = randomBytes(MiB);
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'files-robust-'));
  root = path.join(base, 'root');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  writeFileSync(path.join(base, 'secret.txt'), secret);
  writeFileSync(path.join(root, 'index.html'), '<p>index</p>\n');
  writeFileSync(path.join(root, 'sub', 'a.txt'), 'hello\n');
  mkdirSync(path.join(root, 'site'));
  writeFileSync(path.join(root, 'site', 'index.html'), '<a href="page.html">relative</a>\n');
  writeFileSync(path.join(root, 'big.bin'), big);
  symlinkSync('../secret.txt', path.join(root, 'escape'));
  symlinkSync('..', path.join(root, 'up'));
  symlinkSync(path.join(base, 'secret.txt'), path.join(root, 'absolute-link'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** The cases only the file system can answer, with the statuses that are right for each. */
const FILE_SYSTEM_TARGETS: Readonly<Record<string, { target: string; statuses: number[] }>> = {
  'a symlink to a file outside the root': { target: '/escape', statuses: [403] },
  'a symlink to the directory above the root': { target: '/up/secret.txt', statuses: [403] },
  'an absolute symlink to the secret': { target: '/absolute-link', statuses: [403] },
  'double-encoded .. (%252e%252e)': { target: '/%252e%252e/secret.txt', statuses: [404] },
  'double-encoded slash (%252f)': { target: '/..%252fsecret.txt', statuses: [404] },
  'the secret by its name at the root': { target: '/secret.txt', statuses: [404] },
  // An absolute file-system path is a path under the root like any other: /etc/passwd there is missing.
  'an absolute file-system path': { target: '/etc/passwd', statuses: [404] },
  // A file named as a directory: realpath says ENOTDIR, as web servers answer (issue 27).
  'a file with a trailing slash': { target: '/sub/a.txt/', statuses: [404] },
};

/** Every case this suite tries, with the statuses it accepts. */
const ALL_TARGETS: [string, string, number[]][] = [
  ...Object.entries(HOSTILE_TARGETS).map(([name, target]): [string, string, number[]] => [name, target, [400]]),
  ...Object.entries(FILE_SYSTEM_TARGETS).map(([name, { target, statuses }]): [string, string, number[]] => [name, target, statuses]),
];

/** True if the project's HTTP parser itself refuses `target` (then no file job, and no path log line, exists). */
function parserRefuses(target: string): boolean {
  const session = createSession({ protocol: 'files', maxHeaderBytes: 16 * 1024, maxBodyBytes: MiB, root: '/' });
  const step = session.receive(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1'));
  session.close();
  return step.jobs[0]?.kind === 'http-error';
}

/** Every lab variant with `files`; a lab that offers `--copy` is tried with each copy on its first variant. */
function fileCases(): { title: string; lab: LabCase; args: string[] }[] {
  return servingCases((info) => info.protocols.includes('files')).flatMap((lab) => {
    const copies = lab.info.fileCopies;
    if (!copies) return [{ title: lab.title, lab, args: [] }];
    if (lab.variant !== lab.info.variants[0]) return [{ title: lab.title, lab, args: [] }];
    return copies.map((copy) => ({ title: `${lab.title}, ${copy.name}`, lab, args: [...copy.args] }));
  });
}

/** One request on a fresh connection (Connection: close), and every byte until the server's FIN. */
async function fetchRaw(port: number, request: string): Promise<Buffer> {
  const client = await EchoClient.connect(port, { keep: true });
  try {
    await client.send(Buffer.from(request, 'latin1'));
    await client.waitForEnd(10_000);
    return client.receivedBytes;
  } finally {
    client.destroy();
  }
}

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`;

/** Head and body of one response. */
function split(raw: Buffer): { status: number; head: string; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end).toString('latin1');
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]), head, body: raw.subarray(end + 4) };
}

const started = (lab: LabCase, args: string[]) => lab.start(['--protocol', 'files', '--root', root, ...args]);

describe.each(fileCases())('lab $title, files', ({ lab, args }) => {
  it('hostile paths: each gets 400, 403 or 404 and a log line, and no response holds a byte of the secret', { timeout: 60_000 }, async () => {
    const server = await started(lab, args);
    const seen: string[] = [];
    for (const [name, target, statuses] of ALL_TARGETS) {
      const raw = await fetchRaw(server.port, get(target));
      const { status } = split(raw);
      seen.push(`${name}: ${status}`);
      expect(statuses, `${name} (${target}) answered ${raw.toString('latin1').split('\r\n')[0]}`).toContain(status);
      expect(raw.includes(secret), `${name}: the secret leaked`).toBe(false);
      if (!parserRefuses(target)) {
        await eventually(() => (server.output().stdout + server.output().stderr).includes(`${JSON.stringify(target)} refused, ${status}`) || undefined, 5000, `the log line for ${name}`);
      }
    }
    expect(seen).toHaveLength(ALL_TARGETS.length);
    await stopCleanly(server);
  });

  it('whole files, ranges and HEAD are byte-exact; pipelined requests on one connection are answered in order', { timeout: 60_000 }, async () => {
    const server = await started(lab, args);
    const whole = split(await fetchRaw(server.port, get('/big.bin')));
    expect(whole.status).toBe(200);
    expect(whole.head).toContain(`Content-Length: ${MiB}`);
    expect(sha256(whole.body)).toBe(sha256(big));
    const range = split(await fetchRaw(server.port, get('/big.bin', 'Range: bytes=1000-1999\r\n')));
    expect(range.head).toContain(`Content-Range: bytes 1000-1999/${MiB}`);
    expect(range.body.equals(big.subarray(1000, 2000))).toBe(true);
    const head = await fetchRaw(server.port, `HEAD /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(split(head).body.length).toBe(0);
    expect(split(head).head).toContain(`Content-Length: ${MiB}`);
    // Keep-alive: three requests in one write, the last one closes.
    const pipelined = await fetchRaw(
      server.port,
      'GET /sub/a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n' + get('/', 'Range: bytes=-6\r\n'),
    );
    const text = pipelined.toString('latin1');
    expect(text.match(/^HTTP\/1\.1 \d{3}/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 404', 'HTTP/1.1 206']);
    expect(text).toContain('\r\n\r\nhello\n');
    expect(text.endsWith('\r\n\r\nx</p>\n')).toBe(true);
    // A directory without its trailing slash: 301 to it with the slash, so relative links resolve under it.
    expect((await fetchRaw(server.port, get('/site?x=1'))).toString('latin1')).toBe(
      'HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\nLocation: /site/?x=1\r\nConnection: close\r\n\r\nMoved Permanently\n',
    );
    expect(split(await fetchRaw(server.port, get('/site/'))).body.toString('latin1')).toBe('<a href="page.html">relative</a>\n');
    await stopCleanly(server);
  });

  it('a client that stops reading a 256 MiB file holds bounded server memory; a file truncated meanwhile ends that response, and the next client is served', { timeout: 60_000 }, async () => {
    const name = `huge-${Math.random().toString(36).slice(2)}.bin`;
    const file = path.join(root, name);
    writeFileSync(file, '');
    truncateSync(file, HUGE_BYTES);
    const server: LabProcess = await started(lab, args);
    // Warm the lab up first, so its memory before is a served lab's, not a fresh one's.
    expect(split(await fetchRaw(server.port, get('/big.bin'))).status).toBe(200);
    let before = treeUsage(server.pid, { fds: false }).rssBytes;
    // A lab with a process per connection adds a whole Node process for the stalled client: one
    // idle client's child is weighed first, so only what the stalled one holds beyond it counts.
    let perConnection = 0;
    if (lab.traits.children) {
      const idle = await EchoClient.connect(server.port, { keep: true });
      await idle.send(Buffer.from('GET /sub/a.txt HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
      await eventually(() => idle.receivedBytes.toString('latin1').endsWith('hello\n') || undefined, 20_000, 'the idle client\'s reply');
      const withChild = treeUsage(server.pid, { fds: false }).rssBytes;
      perConnection = withChild - before;
      before = withChild;
    }

    const client = await EchoClient.connect(server.port);
    client.stopReading();
    await client.send(Buffer.from(`GET /${name} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1'));
    // Stalled: the server's send queue is full and has not moved for STALL_SAMPLES polls, and the
    // server has all but stopped using CPU meanwhile (one that kept reading the file into memory
    // would still be busy).
    const samples: { queued: number; cpuMs: number }[] = [];
    await eventually(
      () => {
        const queued = connectionQueues(server.port, client.socket.localPort!)?.serverUnsent ?? 0;
        samples.push({ queued, cpuMs: treeUsage(server.pid, { fds: false }).cpuMs });
        const recent = samples.slice(-STALL_SAMPLES);
        const still = recent.length === STALL_SAMPLES && queued > 0 && recent.every((sample) => sample.queued === queued);
        return (still && recent.at(-1)!.cpuMs - recent[0]!.cpuMs <= STALL_CPU_MS) || undefined;
      },
      30_000,
      'the server to stall on a full send queue',
    );
    const growth = treeUsage(server.pid, { fds: false }).rssBytes - before - perConnection;
    expect(growth, `server memory grew ${(growth / MiB).toFixed(1)} MiB for one stalled client`).toBeLessThan(STALLED_GROWTH_LIMIT);

    // The file shrinks under the transfer: the server cannot keep its Content-Length and must close.
    truncateSync(file, MiB);
    client.socket.resume();
    await client.waitForEnd(20_000);
    expect(client.received).toBeLessThan(HUGE_BYTES);
    await eventually(() => server.output().stdout.includes('file truncated while being sent') || undefined, 10_000, 'the truncation in the disconnect line');
    const next = split(await fetchRaw(server.port, get('/sub/a.txt')));
    expect(next.body.toString()).toBe('hello\n');
    await stopCleanly(server);
    rmSync(file);
  });
});

/**
 * Issue 27 finding 3: a client that pipelines 1,700 requests for a 1 MiB file and never reads
 * made lab 05 open a descriptor for each request behind the first (about 1,500 held): a dozen
 * such clients took every descriptor the server had. A file is opened when its turn to be sent
 * comes, so the client holds its own socket and one file, whatever it pipelines.
 * When a file's turn comes is the outbox's rule (the kit's, or a stream's), the same in every
 * variant of a lab: a variant changes how it waits and submits. So each lab's first variant, in
 * each of its copies (about 8 s a case).
 */
describe.each(fileCases().filter(({ lab }) => lab.variant === lab.info.variants[0]))('lab $title, files', ({ lab, args }) => {
  it('hostile 3: 1,700 pipelined GETs of a 1 MiB file from a client that never reads hold at most a few descriptors', { timeout: 60_000 }, async () => {
    const server = await started(lab, ['--quiet', ...args]);
    expect(split(await fetchRaw(server.port, get('/big.bin'))).status).toBe(200);
    const client = await EchoClient.connect(server.port);
    client.stopReading();
    // Lab 02's child is this client's whole process: weigh the tree's descriptors, its child's included.
    const fdsOf = () => treeUsage(server.pid).fds;
    // The baseline once the count holds still: what the client costs before it asks for anything
    // (lab 02's child, lab 08's thread, each with its own loop) is in it, and what starting them
    // opens for a moment (lab 08's thread reads its modules, 8 files at once) is over.
    let last = -1;
    let since = performance.now();
    const before = await eventually(
      () => {
        const now = fdsOf();
        if (now !== last || now <= 0) [last, since] = [now, performance.now()];
        return performance.now() - since >= 300 ? now : undefined;
      },
      20_000,
      'the descriptor count to hold still',
    );
    await client.send(Buffer.from('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1700), 'latin1'));
    // Stalled: the server's send queue full and unmoved over STALL_SAMPLES polls; the most descriptors seen meanwhile.
    let most = 0;
    const queues: number[] = [];
    await eventually(
      () => {
        most = Math.max(most, fdsOf());
        queues.push(connectionQueues(server.port, client.socket.localPort!)?.serverUnsent ?? 0);
        const recent = queues.slice(-STALL_SAMPLES);
        return (recent.length === STALL_SAMPLES && recent[0]! > 0 && recent.every((queued) => queued === recent[0])) || undefined;
      },
      30_000,
      'the server to stall on a full send queue',
    );
    most = Math.max(most, fdsOf());
    // The one file in flight (and what lab 02's child opens meanwhile: a Node process's own descriptors).
    const perClient = lab.traits.children ? 40 : 4;
    expect(most - before, `descriptors held for one client (before ${before}, most ${most})`).toBeLessThanOrEqual(perClient);
    // Gone before the stop: a client that never reads would hold the shutdown to its deadline (5 s).
    client.destroy();
    await stopCleanly(server);
  });
});

const WITH_FD_LIMIT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'with-fd-limit.sh');

/**
 * Issue 27 finding 3, its second half: out of descriptors, a file request was answered 403
 * (`open: EMFILE`), as if the file were forbidden. It is the server's trouble: 503, try again.
 * For the labs whose connections share the server's descriptor table (lab 02's child has its own;
 * lab 01 has one client, and the rest wait in the kernel's queue without a descriptor, as do
 * those beyond lab 08's pool; lab 08's thread per connection keeps descriptors back for its next
 * thread, and turns clients away before its table fills), on one
 * event loop: libuv keeps a spare descriptor per loop for its own EMFILE handling, so with a loop
 * per worker (`--workers`) whether the table is full at the moment of the open depends on which
 * loop last spent its spare. Those labs answer through the same lookUp (shared/file-open.ts).
 */
describe.each(fileCases().filter(({ lab }) => !lab.traits.children && lab.servedAtOnce === undefined && !lab.variant.threadPerConnection && lab.info.coresFlag !== '--workers'))('lab $title, files', ({ lab, args }) => {
  it('hostile 3: a file request when the server is out of descriptors (prlimit --nofile=64) gets 503 with Retry-After, and 200 once there are some again', { timeout: 60_000 }, async () => {
    const server = await startExecutable(lab.id, WITH_FD_LIMIT, ['64', ...lab.command(['--protocol', 'files', '--root', root, '--quiet', ...args])]);
    const asker = await EchoClient.connect(server.port, { keep: true });
    const ask = async (what: string) => {
      const from = asker.received;
      await asker.send(Buffer.from('GET /sub/a.txt HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
      await eventually(() => (/\r\n\r\n[^]*\n$/.test(asker.receivedBytes.subarray(from).toString('latin1')) ? true : undefined), 20_000, what);
      return split(asker.receivedBytes.subarray(from));
    };
    expect((await ask('the first reply')).status).toBe(200);
    // Fill the descriptor table: 80 idle clients, more than it has room for; those it cannot take it closes.
    const crowd = await Promise.all(Array.from({ length: 80 }, () => EchoClient.connect(server.port, { keep: true })));
    await eventually(() => (openFds(server.pid) >= 63 ? true : undefined), 20_000, 'the server to hold 63 descriptors or more');
    const refused = await ask('the reply out of descriptors');
    expect(refused.status, refused.head).toBe(503);
    expect(refused.head).toContain('Retry-After: 1');
    for (const client of crowd) client.destroy();
    await eventually(() => (openFds(server.pid) < 40 ? true : undefined), 20_000, 'the crowd to be gone');
    expect((await ask('the reply after')).status).toBe(200);
    asker.destroy();
    await stopCleanly(server);
  });
});
