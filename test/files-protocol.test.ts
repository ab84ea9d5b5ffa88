/**
 * The files protocol core on its own (shared/files.ts), fed bytes directly: requests in, jobs and
 * response heads out, with the file system's answers handed in as plain facts. Then the one
 * module that asks the file system (shared/file-open.ts), on a real temporary tree with a secret
 * beside the root and symlinks pointing at it.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFile, closeBody, lookUp, openRoot } from '../shared/file-open.js';
import { contentType, type FileFacts, type FileJob, fileReply, parseRange, parseTarget } from '../shared/files.js';
import type { Logger } from '../shared/log.js';
import { respond, type Job, type ProtocolConfig } from '../shared/protocol.js';
import { createSession } from './helpers/conversation.js';
import { NO_WORK } from '../shared/work.js';
import { HOSTILE_TARGETS } from './helpers/hostile-paths.js';

const FILES: ProtocolConfig = { protocol: 'files', maxHeaderBytes: 8192, maxBodyBytes: 1024, root: '/nonexistent' };
const MTIME = Date.UTC(2026, 0, 2, 3, 4, 5);
const FILE = (size: number, name = 'a.txt'): FileFacts => ({ kind: 'file', size, mtimeMs: MTIME, name });

/** Every job of one session fed `chunks`, and whether it said close. */
function jobsOf(...chunks: string[]): { jobs: (Job | FileJob)[]; close: boolean } {
  const session = createSession(FILES);
  const jobs: (Job | FileJob)[] = [];
  let close = false;
  for (const chunk of chunks) {
    const step = session.receive(Buffer.from(chunk, 'latin1'));
    jobs.push(...step.jobs);
    close ||= step.close;
  }
  session.close();
  return { jobs, close };
}

const get = (target: string, extra = '', method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

/** The one file job `raw` frames into. */
function fileJob(raw: string): FileJob {
  const { jobs } = jobsOf(raw);
  expect(jobs).toHaveLength(1);
  const job = jobs[0]!;
  if (job.kind !== 'file') throw new Error(`expected a file job, got ${job.kind}`);
  return job;
}

/** The response head (and an error's body) as latin1, and the range that follows. */
function reply(raw: string, facts: FileFacts | undefined) {
  const r = fileReply(fileJob(raw), facts);
  return { status: r.status, text: r.head.toString('latin1'), start: r.start, length: r.length };
}

const okHead = (length: number, type = 'text/plain; charset=utf-8', extra = '') =>
  `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\nLast-Modified: Fri, 02 Jan 2026 03:04:05 GMT\r\nAccept-Ranges: bytes\r\n${extra}\r\n`;

describe('files core: framing and responses', () => {
  it('GET: 200 with Content-Length, Content-Type from the extension, Last-Modified; the whole file follows', () => {
    expect(reply(get('/a.txt'), FILE(11))).toEqual({ status: 200, text: okHead(11), start: 0, length: 11 });
  });

  it('HEAD: the same head as GET and no body', () => {
    expect(reply(get('/a.txt', '', 'HEAD'), FILE(11))).toEqual({ status: 200, text: okHead(11), start: 0, length: 0 });
  });

  it('keep-alive: two pipelined requests in one chunk are two jobs and the connection stays open', () => {
    const { jobs, close } = jobsOf(get('/a') + get('/b'));
    expect(jobs.map((job) => job.kind === 'file' && job.segments.join('/'))).toEqual(['a', 'b']);
    expect(close).toBe(false);
  });

  it('HTTP/1.0 closes after the response unless it asks for keep-alive; Connection: close is honoured', () => {
    expect(reply('GET /a HTTP/1.0\r\n\r\n', FILE(1)).text).toContain('Connection: close\r\n');
    expect(jobsOf('GET /a HTTP/1.0\r\n\r\n').close).toBe(true);
    expect(reply('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', FILE(1)).text).toContain('Connection: keep-alive\r\n');
    expect(jobsOf(get('/a', 'Connection: close\r\n')).close).toBe(true);
  });

  it('a missing file is 404, a forbidden one 403; both keep the connection, and the body never names the path', () => {
    const missing = reply(get('/nope'), { kind: 'missing', reason: 'no such file' });
    expect(missing.text).toBe('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nNot Found\n');
    expect(reply(get('/x'), { kind: 'forbidden', reason: 'a symlink leads outside the root' }).status).toBe(403);
  });

  it('any method but GET and HEAD is 405 with Allow: GET, HEAD (its body read and dropped)', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = reply(`${method} /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`, FILE(1));
      expect(r.text).toBe(
        'HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\nAllow: GET, HEAD\r\n\r\nMethod Not Allowed\n',
      );
    }
  });

  it('a request without Host, with two, or with a body over the limit is refused as the http echo refuses it, and closes', () => {
    for (const raw of ['GET / HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n']) {
      const { jobs, close } = jobsOf(raw);
      expect(jobs.map((job) => job.kind)).toEqual(['http-error']);
      expect(Buffer.from(respond(jobs[0] as Job, NO_WORK)).toString('latin1')).toMatch(/^HTTP\/1\.1 (400|413) /);
      expect(close).toBe(true);
    }
  });

  it('once a connection is decided to close, nothing pipelined behind it is framed and its first reason stands', () => {
    const twoHosts = 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n';
    for (const behind of [twoHosts, get('/a.txt'), 'GET / HTTP/1.1\r\n\r\n']) {
      const { jobs, close } = jobsOf(twoHosts + behind);
      expect(jobs.map((job) => job.kind)).toEqual(['http-error']);
      expect(Buffer.from(respond(jobs[0] as Job, NO_WORK)).toString('latin1')).toContain('more than one Host header');
      expect(close).toBe(true);
    }
  });

  it('Range: one range is 206 with Content-Range; open-ended and suffix ranges; the end is clipped to the file', () => {
    const range = (value: string) => reply(get('/a.txt', `Range: ${value}\r\n`), FILE(100));
    expect(range('bytes=10-19')).toEqual({
      status: 206,
      text:
        'HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n' +
        'Last-Modified: Fri, 02 Jan 2026 03:04:05 GMT\r\nAccept-Ranges: bytes\r\nContent-Range: bytes 10-19/100\r\n\r\n',
      start: 10,
      length: 10,
    });
    expect(range('bytes=90-')).toMatchObject({ status: 206, start: 90, length: 10 });
    expect(range('bytes=-5')).toMatchObject({ status: 206, start: 95, length: 5 });
    expect(range('bytes=50-5000')).toMatchObject({ status: 206, start: 50, length: 50 });
    expect(range('bytes=-500')).toMatchObject({ status: 206, start: 0, length: 100 });
  });

  it('Range past the end is 416 with Content-Range: bytes */size; an empty file satisfies no range', () => {
    const r = reply(get('/a.txt', 'Range: bytes=100-\r\n'), FILE(100));
    expect(r.text).toBe(
      'HTTP/1.1 416 Range Not Satisfiable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\nContent-Range: bytes */100\r\n\r\nRange Not Satisfiable\n',
    );
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
  });

  it('several ranges, a malformed one, an inverted one or two Range lines are ignored: the whole file, 200', () => {
    for (const extra of ['Range: bytes=0-1,5-6\r\n', 'Range: lines=1-2\r\n', 'Range: bytes=9-3\r\n', 'Range: bytes=-\r\n', 'Range: bytes=0-1\r\nRange: bytes=2-3\r\n']) {
      expect(reply(get('/a.txt', extra), FILE(10))).toMatchObject({ status: 200, start: 0, length: 10 });
    }
  });

  it('Content-Type comes from the extension; an unknown or missing one is application/octet-stream', () => {
    expect(contentType('/r/index.html')).toBe('text/html; charset=utf-8');
    expect(contentType('/r/x.PNG')).toBe('image/png');
    expect(contentType('/r/data.bin')).toBe('application/octet-stream');
    expect(contentType('/r/.profile')).toBe('application/octet-stream');
    expect(contentType('/r.d/Makefile')).toBe('application/octet-stream');
  });
});

describe('files core: hostile paths never reach the file system', () => {
  it.each(Object.entries(HOSTILE_TARGETS))('%s (%s): 400, the connection closes', (_name, target) => {
    const parsed = parseTarget(target);
    expect('status' in parsed && parsed.status).toBe(400);
    const { jobs, close } = jobsOf(get(target));
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(close).toBe(true);
    // llhttp itself refuses a few (a target it cannot parse): the http echo's 400, as for any framing error.
    if (job.kind === 'http-error') return expect(job.status).toBe(400);
    expect(job.kind === 'file' && job.refused?.status).toBe(400);
    // The refusal is decided before any lookup: no facts are needed, and none change it.
    expect(fileReply(job as FileJob, FILE(1)).status).toBe(400);
  });

  it('double encoding is decoded once: %252e%252e is the name "%2e%2e", never ".."', () => {
    expect(parseTarget('/%252e%252e/secret.txt')).toEqual({ segments: ['%2e%2e', 'secret.txt'], directory: false });
  });

  it('a query string and a trailing slash are not part of the name', () => {
    expect(parseTarget('/sub/a.txt?x=../../etc')).toEqual({ segments: ['sub', 'a.txt'], directory: false });
    expect(parseTarget('/sub/')).toEqual({ segments: ['sub'], directory: true });
    expect(parseTarget('/')).toEqual({ segments: [], directory: true });
    expect(parseTarget('/caf%C3%A9.txt')).toEqual({ segments: ['café.txt'], directory: false });
  });
});

describe('file-open: the file system\'s answers, on a real tree', () => {
  let base: string;
  let root: string;
  const warnings: string[] = [];
  const log: Logger = { quiet: false, info: () => {}, client: () => {}, warn: (line) => warnings.push(line) };

  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), 'files-core-'));
    root = path.join(base, 'root');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    mkdirSync(path.join(root, 'empty'));
    writeFileSync(path.join(base, 'secret.txt'), 'SECRET');
    writeFileSync(path.join(root, 'index.html'), '<p>hi</p>');
    mkdirSync(path.join(root, 'deep'));
    writeFileSync(path.join(root, 'deep', 'index.html'), '<p>deep</p>');
    writeFileSync(path.join(root, 'sub', 'a.txt'), 'hello');
    utimesSync(path.join(root, 'sub', 'a.txt'), MTIME / 1000, MTIME / 1000);
    symlinkSync('../secret.txt', path.join(root, 'escape'));
    symlinkSync(base, path.join(root, 'up'));
    symlinkSync('sub/a.txt', path.join(root, 'inside'));
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const kindAt = (...segments: string[]) => {
    const found = lookUp(openRoot(root), segments);
    if (found.fd >= 0) closeBody({ fd: found.fd, position: 0, remaining: 0, closed: false });
    return found.facts.kind;
  };

  it('a file under the root is found with its size and modification time', () => {
    const found = lookUp(openRoot(root), ['sub', 'a.txt']);
    expect(found.facts).toEqual({ kind: 'file', size: 5, mtimeMs: MTIME, name: path.join(openRoot(root), 'sub', 'a.txt') });
    closeBody({ fd: found.fd, position: 0, remaining: 0, closed: false });
  });

  it('a symlink to a file outside the root, or to a directory above it, is forbidden; one inside is followed', () => {
    expect(kindAt('escape')).toBe('forbidden');
    expect(kindAt('up', 'secret.txt')).toBe('forbidden');
    expect(kindAt('inside')).toBe('file');
  });

  it('a directory without its trailing slash is redirected there (301), its query kept; with it, or the root, its index.html is served', () => {
    const at = (target: string) => answerFile(fileJob(get(target)), openRoot(root), 'p', log);
    const moved = at('/deep?q=1');
    expect(moved.head.toString('latin1')).toBe(
      'HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\nLocation: /deep/?q=1\r\n\r\nMoved Permanently\n',
    );
    expect(moved.body).toBeUndefined();
    for (const target of ['/deep/', '/']) {
      const served = at(target);
      expect(served.head.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      closeBody(served.body!);
    }
    // A file is never redirected, whatever its name.
    const file = at('/sub/a.txt');
    expect(file.head.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    closeBody(file.body!);
  });

  it('a directory is answered with its index.html, or missing without one; a FIFO is forbidden (and open does not hang)', () => {
    expect(kindAt()).toBe('file');
    expect(kindAt('empty')).toBe('missing');
    expect(kindAt('fifo')).toBe('forbidden');
    expect(kindAt('nope.txt')).toBe('missing');
    expect(kindAt('sub', 'a.txt', 'deeper')).toBe('missing');
  });

  it('answerFile: a symlink out gets 403 and a warning line naming the target, never the secret', () => {
    warnings.length = 0;
    const answer = answerFile(fileJob(get('/escape')), openRoot(root), '127.0.0.1:1', log);
    expect(answer.head.toString('latin1')).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer.head.toString('latin1')).not.toContain('SECRET');
    expect(answer.body).toBeUndefined();
    expect(warnings).toEqual(['127.0.0.1:1: GET "/escape" refused, 403: a symlink leads outside the root']);
  });

  // Issue 27: 59 KB of pipelined 403s wrote 158 KB of warnings, which --quiet keeps.
  it('answerFile: 1,000 refusals for one client print at most ten lines a second, then one line with the count; another client still gets its line', async () => {
    warnings.length = 0;
    const second = () => Math.floor(performance.now() / 1000);
    const first = second();
    for (let i = 0; i < 1000; i++) answerFile(fileJob(get('/escape')), openRoot(root), '127.0.0.1:2', log);
    // Ten a second for each second the burst touched (one, on a quiet machine), and a count line at each new second.
    const seconds = second() - first + 1;
    answerFile(fileJob(get('/escape')), openRoot(root), '127.0.0.1:3', log);
    expect(warnings.filter((line) => line.startsWith('127.0.0.1:2: ')).length).toBeLessThanOrEqual(11 * seconds);
    expect(warnings.filter((line) => line.startsWith('127.0.0.1:3: '))).toHaveLength(1);
    const burst = second();
    while (second() === burst) await new Promise((resolve) => setTimeout(resolve, 5));
    answerFile(fileJob(get('/escape')), openRoot(root), '127.0.0.1:3', log);
    expect(warnings.some((line) => /^127\.0\.0\.1:2: \d+ more refused requests not logged \(over 10 a second\)$/.test(line)), warnings.slice(-3).join('\n')).toBe(true);
  });

  it('answerFile: a range of a file comes with its open descriptor, positioned at the range', () => {
    const answer = answerFile(fileJob(get('/sub/a.txt', 'Range: bytes=1-3\r\n')), openRoot(root), 'p', log);
    expect(answer.body).toMatchObject({ position: 1, remaining: 3, closed: false });
    closeBody(answer.body!);
    expect(answer.body!.closed).toBe(true);
  });

  it('openRoot refuses a missing root or a file, in one line', () => {
    expect(() => openRoot(path.join(base, 'missing'))).toThrow(/--root .*: ENOENT/);
    expect(() => openRoot(path.join(base, 'secret.txt'))).toThrow(/is not a directory/);
  });
});
