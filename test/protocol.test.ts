/**
 * The protocol core on its own, fed bytes directly through the connection contract
 * (shared/conversation.ts, driven by test/helpers/conversation.ts): no sockets, no servers, no timers. A framing
 * bug shows up here as a one-line failing case instead of a hung connection in the lab suites.
 *
 * Every reply is compared as a whole: the concatenated bytes of all replies of a session, as a
 * latin1 string (one character per byte, so equal strings are equal bytes, and a failure prints
 * a readable diff).
 */

import { describe, expect, it } from 'vitest';
import type { FileJob } from '../shared/conversation.js';
import { respond, type Job, type ProtocolConfig } from '../shared/protocol.js';
import { createSession, type Session } from './helpers/conversation.js';
import { calibrateWork, doWork, NO_WORK, workSink, workSpec } from '../shared/work.js';

const HTTP: ProtocolConfig = { protocol: 'http', maxHeaderBytes: 8192, maxBodyBytes: 1024 };
const ECHO: ProtocolConfig = { protocol: 'echo', maxHeaderBytes: 8192, maxBodyBytes: 1024 };

interface Played {
  /** Every reply byte, in order, as latin1. */
  readonly replies: string;
  /** Some step said close. */
  readonly closed: boolean;
  /** The replies of each step, so a case can say which chunk produced what. */
  readonly perStep: string[];
}

/**
 * Feeds `chunks` one `receive` each (then `end()` if `fin`), answering every job with `respond`
 * exactly as a lab does. Once a step says close the consumer reads no more, so neither does this;
 * a session that still produced replies after it would be caught by the cases that send more.
 */
function play(session: Session, chunks: (string | Buffer)[], fin = false): Played {
  const perStep: string[] = [];
  let closed = false;
  const answer = (jobs: (Job | FileJob)[]) => jobs.map((job) => Buffer.from(respond(job as Job, NO_WORK)).toString('latin1')).join('');
  for (const chunk of chunks) {
    if (closed) break;
    const step = session.receive(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    perStep.push(answer(step.jobs));
    closed = step.close;
  }
  if (fin && !closed) {
    const step = session.end();
    perStep.push(answer(step.jobs));
    closed = step.close;
  }
  return { replies: perStep.join(''), closed, perStep };
}

const playHttp = (chunks: (string | Buffer)[], fin = false, config = HTTP) => play(createSession(config), chunks, fin);

/** A 200 echo exactly as the core writes it. */
const ok = (body: string, connection?: 'close' | 'keep-alive') =>
  'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
  `Content-Length: ${body.length}\r\n${connection ? `Connection: ${connection}\r\n` : ''}\r\n${body}`;

/** An error reply exactly as the core writes it. */
const refusal = (status: string, reason: string) =>
  `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${reason.length + 1}\r\n` +
  `Connection: close\r\n\r\n${reason}\n`;

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

const post = (target: string, body: string, extra = '') =>
  `POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

describe('echo', () => {
  it('answers every chunk with itself, and closes after the peer half-closes', () => {
    const session = createSession(ECHO);
    const played = play(session, ['hello ', Buffer.from([0, 255, 10]), 'world'], true);
    expect(played.replies).toBe('hello \x00\xff\nworld');
    expect(played.perStep).toEqual(['hello ', '\x00\xff\n', 'world', '']);
    expect(played.closed).toBe(true);
  });

  it('never stops on its own at shutdown: a byte stream has no request boundary', () => {
    const session = createSession(ECHO);
    expect(session.stopAfterCurrent()).toBe(false);
    expect(play(session, ['still answered']).replies).toBe('still answered');
    expect(session.requestArriving).toBe(0);
  });
});

describe('http framing', () => {
  const request = 'GET /split/me HTTP/1.1\r\nHost: test\r\nUser-Agent: unit\r\n\r\n';
  const body = 'twelve bytes';
  const withBody = post('/p', body);

  it('a head split at every byte position gives the same response bytes', () => {
    for (let at = 1; at < request.length; at++) {
      const played = playHttp([request.slice(0, at), request.slice(at)]);
      expect(played.replies, `split at ${at}`).toBe(ok('/split/me'));
      expect(played.perStep, `split at ${at}`).toEqual(['', ok('/split/me')]);
    }
  });

  it('a request with a body split at every byte position, and one byte at a time, gives the same response bytes', () => {
    for (let at = 1; at < withBody.length; at++) {
      expect(playHttp([withBody.slice(0, at), withBody.slice(at)]).replies, `split at ${at}`).toBe(ok(body));
    }
    const byteAtATime = playHttp([...withBody]);
    expect(byteAtATime.replies).toBe(ok(body));
    expect(byteAtATime.closed).toBe(false);
  });

  it('answers pipelined requests in one chunk, in order', () => {
    const chunk = post('/a', 'first') + 'GET /second HTTP/1.1\r\nHost: test\r\n\r\n' + 'HEAD /third HTTP/1.1\r\nHost: test\r\n\r\n' + post('/d', 'last');
    const played = playHttp([chunk]);
    expect(played.replies).toBe(ok('first') + ok('/second') + ok('/third').slice(0, -'/third'.length) + ok('last'));
    expect(played.closed).toBe(false);
  });

  it('a chunked body that grows over --max-body-bytes gets 413 in the middle of the body, then nothing more', () => {
    const session = createSession(HTTP);
    const played = play(session, [
      'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n',
      `200\r\n${'a'.repeat(512)}\r\n`,
      `200\r\n${'b'.repeat(512)}\r\n1\r\nc\r\n`,
    ]);
    expect(played.perStep).toEqual(['', '', refusal('413 Content Too Large', 'body is over the 1024-byte limit')]);
    expect(played.closed).toBe(true);
    // The consumer reads no more, but a stray call must not produce a reply either.
    expect(session.receive(Buffer.from('0\r\n\r\n' + post('/x', 'y'))).jobs).toEqual([]);
  });

  it('a Content-Length over --max-body-bytes gets 413 as soon as the head is in', () => {
    const played = playHttp(['POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 1025\r\n\r\n']);
    expect(played.replies).toBe(refusal('413 Content Too Large', 'body of 1025 bytes is over the 1024-byte limit'));
    expect(played.closed).toBe(true);
  });

  it('a malformed request gets 400 and a close; the request before it is still answered', () => {
    const played = playHttp([post('/fine', 'ok') + 'GET / HTTP/1.1\r\nHost x\r\n\r\n']);
    expect(played.replies).toBe(ok('ok') + refusal('400 Bad Request', 'Invalid header token'));
    expect(played.closed).toBe(true);
  });

  it('a head over --max-header-bytes gets 431', () => {
    const played = playHttp([`GET / HTTP/1.1\r\nHost: test\r\nX-Big: ${'h'.repeat(9000)}\r\n\r\n`]);
    expect(played.replies).toBe(refusal('431 Request Header Fields Too Large', 'request head over the 8192-byte limit'));
    expect(played.closed).toBe(true);
  });

  // Issue 27 finding 6: llhttp's callbacks carry no colons or CRLFs, so Node's count let these through.
  it('the head limit counts the head as it arrives: 16,000 empty `X:` lines (64 KB) get 431', () => {
    const lines = 'X:\r\n'.repeat(16_000);
    const played = playHttp([`GET / HTTP/1.1\r\nHost: test\r\n${lines}\r\n`]);
    expect(played.replies).toBe(refusal('431 Request Header Fields Too Large', 'request head over the 8192-byte limit'));
    // Whitespace around a value counts too.
    const padded = playHttp([`GET / HTTP/1.1\r\nHost: test\r\nX:${' '.repeat(9000)}y\r\n\r\n`]);
    expect(padded.replies).toBe(refusal('431 Request Header Fields Too Large', 'request head over the 8192-byte limit'));
  });

  it('a head of exactly --max-header-bytes passes, one byte more gets 431, however the stream is cut and whatever came before it', () => {
    const headOf = (bytes: number) => {
      const start = 'GET /x HTTP/1.1\r\nHost: test\r\nX-Pad: ';
      return `${start}${'p'.repeat(bytes - start.length - 4)}\r\n\r\n`;
    };
    const exact = headOf(HTTP.maxHeaderBytes);
    expect(exact.length).toBe(HTTP.maxHeaderBytes);
    // Behind a Content-Length body and a chunked one (with a blank line inside its data), in one write.
    const before = post('/a', 'ab\r\n\r\ncd') + 'POST /b HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n';
    const stream = before + exact;
    const expected = ok('ab\r\n\r\ncd') + ok('\r\n\r\n') + ok('/x');
    for (let cut = 0; cut <= stream.length; cut += 97) {
      expect(playHttp([stream.slice(0, cut), stream.slice(cut)]).replies, `cut at ${cut}`).toBe(expected);
    }
    const over = playHttp([before + headOf(HTTP.maxHeaderBytes + 1)]);
    expect(over.replies).toBe(ok('ab\r\n\r\ncd') + ok('\r\n\r\n') + refusal('431 Request Header Fields Too Large', 'request head over the 8192-byte limit'));
  });

  it('requestArriving numbers the request from its first byte to the last of its body, and is 0 between requests and after an error', () => {
    const session = createSession(HTTP);
    expect(session.requestArriving).toBe(0);
    session.receive(Buffer.from('GET / HT'));
    expect(session.requestArriving).toBe(1);
    session.receive(Buffer.from('TP/1.1\r\nHost: test\r\n\r\n'));
    expect(session.requestArriving).toBe(0);
    // A body keeps its request arriving until its last byte, sized or chunked.
    session.receive(Buffer.from('POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nab'));
    expect(session.requestArriving).toBe(2);
    // The next request begins in the same read as this one ends: a new number, so a new timer.
    session.receive(Buffer.from('cPOST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n'));
    expect(session.requestArriving).toBe(3);
    session.receive(Buffer.from('0\r\n\r\n'));
    expect(session.requestArriving).toBe(0);
    session.receive(Buffer.from('GET / HTTP/1.1\r\nHo st'));
    expect(session.requestArriving).toBe(0);
  });
});

describe('http connection ending', () => {
  it('a FIN between requests closes without a reply', () => {
    const played = playHttp([post('/a', 'one')], true);
    expect(played.perStep).toEqual([ok('one'), '']);
    expect(played.closed).toBe(true);
  });

  it('a FIN in the middle of a head or a body closes without a reply: nobody is left to tell', () => {
    for (const partial of ['GET /half', post('/b', 'abcdef').slice(0, -3)]) {
      const played = playHttp([post('/a', 'one'), partial], true);
      expect(played.perStep, JSON.stringify(partial)).toEqual([ok('one'), '', '']);
      expect(played.closed).toBe(true);
    }
  });

  it('a request and the FIN right behind it: the request is answered, then the close', () => {
    const played = playHttp([post('/a', 'last')], true);
    expect(played.replies).toBe(ok('last'));
    expect(played.closed).toBe(true);
  });

  it('Connection: close is answered with Connection: close and ends the session; a request pipelined behind it is not answered', () => {
    const played = playHttp([post('/a', 'bye', 'Connection: close\r\n') + post('/b', 'ignored')]);
    expect(played.replies).toBe(ok('bye', 'close'));
    expect(played.closed).toBe(true);
  });

  it('HTTP/1.0 without keep-alive: Connection: close, then close', () => {
    const played = playHttp(['GET /old HTTP/1.0\r\n\r\n']);
    expect(played.replies).toBe(ok('/old', 'close'));
    expect(played.closed).toBe(true);
  });

  it('HTTP/1.0 with Connection: keep-alive: each response says keep-alive and the connection stays', () => {
    const request = (n: number) => `GET /old/${n} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
    const played = playHttp([request(1), request(2) + request(3)]);
    expect(played.perStep).toEqual([ok('/old/1', 'keep-alive'), ok('/old/2', 'keep-alive') + ok('/old/3', 'keep-alive')]);
    expect(played.closed).toBe(false);
  });

  it('HTTP/1.1 says nothing about the connection while it stays open (persistence is its default)', () => {
    const played = playHttp(['GET /new HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n']);
    expect(played.replies).toBe(ok('/new'));
    expect(played.closed).toBe(false);
  });
});

describe('http Host (RFC 9112 §3.2)', () => {
  it('an HTTP/1.1 request without Host gets 400 and a close', () => {
    const played = playHttp(['GET / HTTP/1.1\r\n\r\n']);
    expect(played.replies).toBe(
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 39\r\n' +
        'Connection: close\r\n\r\nHTTP/1.1 request without a Host header\n',
    );
    expect(played.closed).toBe(true);
  });

  it('more than one Host gets 400, in HTTP/1.0 too', () => {
    for (const version of ['1.1', '1.0']) {
      const played = playHttp([`GET / HTTP/${version}\r\nHost: a\r\nHost: a\r\n\r\n`]);
      expect(played.replies, version).toBe(refusal('400 Bad Request', 'more than one Host header'));
      expect(played.closed).toBe(true);
    }
  });

  it('an HTTP/1.0 request may leave Host out', () => {
    expect(playHttp(['GET /x HTTP/1.0\r\n\r\n']).replies).toBe(ok('/x', 'close'));
  });
});

describe('http Expect', () => {
  const head = (length: number, expect = '100-continue', version = '1.1') =>
    `POST /up HTTP/${version}\r\nHost: test\r\nContent-Length: ${length}\r\nExpect: ${expect}\r\n\r\n`;

  it('100-continue: the interim 100 comes as soon as the head is in, the echo after the body', () => {
    const played = playHttp([head(5), 'hel', 'lo']);
    expect(played.perStep).toEqual([CONTINUE, '', ok('hello')]);
    expect(played.closed).toBe(false);
  });

  it('100-continue is matched without regard to case, and still sent when the body came with the head', () => {
    expect(playHttp([head(5, '100-Continue') + 'hello']).replies).toBe(CONTINUE + ok('hello'));
  });

  it('the 100 keeps its place among pipelined replies', () => {
    const played = playHttp([post('/a', 'first') + head(6), 'second']);
    expect(played.perStep).toEqual([ok('first') + CONTINUE, ok('second')]);
  });

  it('a body over the limit gets 413 at once, and no 100', () => {
    const played = playHttp([head(1025)]);
    expect(played.replies).toBe(refusal('413 Content Too Large', 'body of 1025 bytes is over the 1024-byte limit'));
    expect(played.closed).toBe(true);
  });

  it('any other expectation gets 417 and a close', () => {
    const played = playHttp([head(5, 'something-else')]);
    expect(played.replies).toBe(refusal('417 Expectation Failed', 'the only expectation this server can meet is 100-continue'));
    expect(played.closed).toBe(true);
  });

  it('HTTP/1.0 Expect is ignored (RFC 9110 §10.1.1): no 100, no 417', () => {
    expect(playHttp([head(2, '100-continue', '1.0') + 'ok']).replies).toBe(ok('ok', 'close'));
    expect(playHttp([head(2, 'something-else', '1.0') + 'ok']).replies).toBe(ok('ok', 'close'));
  });
});

describe('http stopAfterCurrent (shutdown)', () => {
  it('between requests: true, and nothing more is answered', () => {
    const session = createSession(HTTP);
    expect(play(session, [post('/a', 'one')]).replies).toBe(ok('one'));
    expect(session.stopAfterCurrent()).toBe(true);
    expect(session.receive(Buffer.from(post('/b', 'two'))).jobs).toEqual([]);
  });

  it('before any byte: true', () => {
    expect(createSession(HTTP).stopAfterCurrent()).toBe(true);
  });

  it('in the middle of a head or a body: false; that request is answered with Connection: close, then close', () => {
    const request = post('/last', 'final body');
    for (const at of [5, request.length - 4]) {
      const session = createSession(HTTP);
      session.receive(Buffer.from(request.slice(0, at)));
      expect(session.stopAfterCurrent(), `stopped at byte ${at}`).toBe(false);
      const played = play(session, [request.slice(at) + post('/never', 'x')]);
      expect(played.replies, `stopped at byte ${at}`).toBe(ok('final body', 'close'));
      expect(played.closed).toBe(true);
    }
  });

  it('an HTTP/1.0 keep-alive request in progress is told close too', () => {
    const session = createSession(HTTP);
    session.receive(Buffer.from('GET /old HTTP/1.0\r\nConnection: keep'));
    expect(session.stopAfterCurrent()).toBe(false);
    expect(play(session, ['-alive\r\n\r\n']).replies).toBe(ok('/old', 'close'));
  });
});

describe('simulated work (shared/work.ts)', () => {
  it('no work spec does nothing; a work spec carries a positive, finite calibration', () => {
    expect(workSpec(0)).toBe(NO_WORK);
    const sinkBefore = workSink;
    doWork(NO_WORK, 123);
    expect(workSink).toBe(sinkBefore);
    const spec = workSpec(50);
    expect(spec.workUs).toBe(50);
    expect(Number.isFinite(spec.itersPerUs) && spec.itersPerUs > 0).toBe(true);
  });

  it('burns CPU in proportion to the spec: 4x the microseconds costs about 4x the CPU time', () => {
    // CPU time of this process (process.cpuUsage), not wall time: another process on a busy
    // machine delays the loop but does not add to its CPU time, so the ratio holds under load.
    // Bounds are wide (2x to 8x for an expected 4x) because the process has other threads (GC,
    // the test runner) whose CPU is counted too. The rate itself comes from calibrateWork, which
    // times with the wall clock and may come out low on a loaded machine; the ratio does not
    // depend on it, which is why this asserts the ratio and not absolute microseconds.
    const itersPerUs = calibrateWork();
    const cpuUs = (workUs: number) => {
      const before = process.cpuUsage();
      doWork({ workUs, itersPerUs }, workUs);
      const used = process.cpuUsage(before);
      return used.user + used.system;
    };
    cpuUs(20_000); // warm-up: the first calls may include compilation
    const small = cpuUs(40_000);
    const large = cpuUs(160_000);
    expect(small).toBeGreaterThan(0);
    expect(large / small).toBeGreaterThan(2);
    expect(large / small).toBeLessThan(8);
  });
});

describe('the split-replies experiment switch (make nagle)', () => {
  const SPLIT: ProtocolConfig = { ...HTTP, splitReplies: true };
  const request = 'POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello';

  it('answers each request with two jobs, the head alone and then the body, whose bytes are the unsplit reply', () => {
    const step = createSession(SPLIT).receive(Buffer.from(request + request, 'latin1'));
    expect(step.jobs.map((job) => job.kind)).toEqual(['http', 'http-body', 'http', 'http-body']);
    const parts = step.jobs.map((job) => Buffer.from(respond(job as Job, NO_WORK)).toString('latin1'));
    expect(parts[0]).toBe(ok('hello').slice(0, -'hello'.length));
    expect(parts[1]).toBe('hello');
    expect(parts.join('')).toBe(playHttp([request + request]).replies);
  });

  it('leaves a HEAD request one job, and echo sessions untouched', () => {
    const head = createSession(SPLIT).receive(Buffer.from('HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n', 'latin1'));
    expect(head.jobs.map((job) => job.kind)).toEqual(['http']);
    const echo = createSession({ ...ECHO, splitReplies: true }).receive(Buffer.from('abc'));
    expect(echo.jobs).toEqual([{ kind: 'echo', data: Buffer.from('abc') }]);
  });
});

/**
 * Once a connection is decided to close (an error reply, a 413, or a final 200), nothing behind it
 * in the same bytes may be answered, and the first reason stands. llhttp goes on parsing the rest
 * of a chunk and calling back; these sequences each send, in ONE chunk, a closing request and then
 * something that would produce a reply of its own.
 */
describe('http after the connection is decided to close', () => {
  const twoHosts = 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n';
  const expectContinue = 'POST /up HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n';
  const bad = refusal('400 Bad Request', 'more than one Host header');

  it('an error, then a pipelined 100-continue request: the 400 alone, no 100 before or after it', () => {
    const played = playHttp([twoHosts + expectContinue + 'hello']);
    expect(played.replies).toBe(bad);
    expect(played.closed).toBe(true);
  });

  it('an error, then a pipelined request: the 400 alone', () => {
    const played = playHttp([twoHosts + post('/next', 'not answered')]);
    expect(played.replies).toBe(bad);
    expect(played.closed).toBe(true);
  });

  it('Connection: close, then a pipelined 100-continue request, an error and a request: the 200 alone', () => {
    for (const behind of [expectContinue, twoHosts, 'GET / HTTP/1.1\r\nHost x\r\n\r\n', post('/next', 'x')]) {
      const played = playHttp([post('/a', 'bye', 'Connection: close\r\n') + behind]);
      expect(played.replies, JSON.stringify(behind)).toBe(ok('bye', 'close'));
      expect(played.closed).toBe(true);
    }
  });

  it('a 413, then more pipelined requests behind its whole body: the 413 alone', () => {
    // A 5-byte limit, so the 6-byte body that is refused is all in the chunk and the next request follows it.
    const small: ProtocolConfig = { ...HTTP, maxBodyBytes: 5 };
    const tooBig = 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\nhello!';
    for (const behind of [expectContinue, twoHosts, post('/next', 'x')]) {
      const played = playHttp([tooBig + behind], false, small);
      expect(played.replies, JSON.stringify(behind)).toBe(refusal('413 Content Too Large', 'body of 6 bytes is over the 5-byte limit'));
      expect(played.closed).toBe(true);
    }
  });

  it('a later failure never overwrites the first reason', () => {
    // Two refusals of different kinds back to back, then a framing error llhttp reports from feed().
    const played = playHttp([twoHosts + 'POST / HTTP/1.1\r\nHost: t\r\nExpect: x\r\n\r\n' + 'GET / HTTP/1.1\r\nHost x\r\n\r\n']);
    expect(played.replies).toBe(bad);
    const chunked = 'POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const oversized = playHttp([chunked + twoHosts], false, { ...HTTP, maxBodyBytes: 4 });
    expect(oversized.replies).toBe(refusal('413 Content Too Large', 'body is over the 4-byte limit'));
  });
});
