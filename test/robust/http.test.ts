/**
 * Robust suite, HTTP mode (case 6): a head sent a byte at a time, heads and bodies over their
 * limits, and a corpus of malformed and request-smuggling inputs. Every bad request must end in
 * `400` (or `431`/`413` for the limits) and a close, or a plain close; never in a socket left
 * hanging, and never in a second request smuggled past the first.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../harness/launch.js';
import { servingCases } from '../helpers/labs.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { httpRequest, httpResponse, statusCodes } from './helpers/http.js';
import { recordMeasurement } from './helpers/measure.js';
import { NothingLost, stopCleanly } from './helpers/nothing-lost.js';

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

/** How long a rejected request may take to be answered and closed. A hung socket never is. */
const VERDICT_TIMEOUT_MS = 15_000;

/** Sends `raw` on a fresh connection, never half-closing, and returns what came back before the server's FIN. */
async function verdict(port: number, raw: string | Buffer): Promise<string> {
  const client = await EchoClient.connect(port, { keep: true });
  try {
    await client.send(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
    await client.waitForEnd(VERDICT_TIMEOUT_MS);
    return client.receivedBytes.toString('latin1');
  } finally {
    client.destroy();
  }
}

const head = (lines: string[]) => `${lines.join('\r\n')}\r\n\r\n`;

/**
 * Inputs a strict HTTP/1.1 parser must refuse. Most are request-smuggling shapes: two framings
 * that disagree (Content-Length with Transfer-Encoding), lengths that parse differently in
 * different parsers, line endings some parsers accept and others do not.
 */
const MALFORMED: Record<string, string> = {
  'Content-Length with Transfer-Encoding: chunked': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 4', 'Transfer-Encoding: chunked']) + '0\r\n\r\n',
  'Transfer-Encoding: chunked with Content-Length': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Content-Length: 4']) + '0\r\n\r\n',
  'duplicate Content-Length, different values': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 4', 'Content-Length: 5']) + 'abcde',
  'duplicate Content-Length, same value': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 4', 'Content-Length: 4']) + 'abcd',
  'Content-Length as a list': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 4, 4']) + 'abcd',
  'negative Content-Length': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: -1']),
  'Content-Length with a plus sign': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: +4']) + 'abcd',
  'Content-Length in hex': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 0x4']) + 'abcd',
  'Content-Length overflowing 64 bits': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length: 99999999999999999999999']),
  'space before the colon': head(['POST / HTTP/1.1', 'Host: x', 'Content-Length : 4']) + 'abcd',
  'chunk size not hex': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + 'zz\r\nabc\r\n0\r\n\r\n',
  'chunk size overflowing 64 bits': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + 'FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n',
  'negative chunk size': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + '-3\r\nabc\r\n0\r\n\r\n',
  'chunk longer than its size': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + '3\r\nabcX\r\n0\r\n\r\n',
  'chunked body with bare LF': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + '3\nabc\n0\n\n',
  'control character in a chunk extension': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + '3;\x01\r\nabc\r\n0\r\n\r\n',
  'Transfer-Encoding not ending in chunked': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked, gzip']),
  'Transfer-Encoding: xchunked': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: xchunked']),
  'Transfer-Encoding folded onto a continuation line': 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n',
  'two Transfer-Encoding headers': head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked', 'Transfer-Encoding: identity']) + '0\r\n\r\n',
  'bare LF line endings': 'GET / HTTP/1.1\nHost: x\n\n',
  'bare CR line ending': 'GET / HTTP/1.1\rHost: x\r\n\r\n',
  'NUL in a header value': head(['GET / HTTP/1.1', 'Host: x', 'X-A: a\0b']),
  'NUL in the target': head(['GET /a\0b HTTP/1.1', 'Host: x']),
  'NUL in the method': head(['G\0T / HTTP/1.1', 'Host: x']),
  'space inside a header name': head(['GET / HTTP/1.1', 'Ho st: x']),
  'header line without a colon': head(['GET / HTTP/1.1', 'Host x']),
  'CR LF inside the target': head(['GET /a\r\nb HTTP/1.1', 'Host: x']),
  'unknown HTTP version': head(['GET / HTTP/9.9', 'Host: x']),
  'garbage after the version': head(['GET / HTTP/1.1x', 'Host: x']),
  'lower-case method': head(['get / HTTP/1.1', 'Host: x']),
  'a TLS ClientHello': '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
};

describe.each(servingCases())('lab %s', ({ id, start, variant }) => {
  it('case 6: a request head sent a byte at a time is closed at --header-timeout; other clients are unaffected', { timeout: 60_000 }, async () => {
    const headerTimeoutMs = 1000;
    const lab = await start(['--protocol', 'http', '--header-timeout', String(headerTimeoutMs / 1000), '--idle-timeout', '30']);
    const guard = await NothingLost.begin(lab, 'http');

    const slow = await EchoClient.connect(lab.port, { keep: true });
    const slowHead = Buffer.from('GET /slow HTTP/1.1\r\nHost: x\r\nX-Endless: ');
    let firstByteAt = performance.now();
    let next = 0;
    // One byte every 100 ms: never idle, never a whole head (after the prefix, the header value
    // just grows by one 'a' at a time).
    const drip = setInterval(() => {
      if (next === 0) firstByteAt = performance.now();
      void slow.send(next < slowHead.length ? slowHead.subarray(next, next + 1) : Buffer.from('a'));
      next++;
    }, 100);

    // Meanwhile (lab 01: right after it) another client is served request after request.
    const other = await EchoClient.connect(lab.port, { keep: true });
    let expected = '';
    try {
      for (let i = 0; i < 10; i++) {
        await other.send(Buffer.from(httpRequest(`/other/${i}`, `body ${i}`)));
        expected += httpResponse(`body ${i}`);
        await other.waitForReceived(expected.length);
      }
      await slow.waitForEnd(headerTimeoutMs + 10_000);
    } finally {
      clearInterval(drip);
    }
    const closedAfterMs = performance.now() - firstByteAt;
    recordMeasurement('case 6 byte-at-a-time head', id, { closedAfterMs });
    expect(other.receivedBytes.toString()).toBe(expected);
    expect(slow.receivedBytes.length, 'no reply to a head that never completed').toBe(0);
    expect(closedAfterMs).toBeGreaterThanOrEqual(headerTimeoutMs - 500);
    await lab.waitForLine(/disconnected \(header timeout;/, 10_000);
    other.end();
    await other.waitForClose();
    await guard.verify();
    await stopCleanly(lab);
  });

  it('case 6: a head over --max-header-bytes gets 431, a body over --max-body-bytes gets 413, each then closed; requests at the limits pass', async () => {
    const lab = await start(['--quiet', '--protocol', 'http', '--max-header-bytes', '1024', '--max-body-bytes', '1024', '--idle-timeout', '30']);
    const guard = await NothingLost.begin(lab, 'http');

    const bigHead = await verdict(lab.port, head(['GET / HTTP/1.1', 'Host: x', `X-Big: ${'h'.repeat(2048)}`]));
    expect(statusCodes(bigHead)).toEqual([431]);
    expect(bigHead).toContain('Connection: close\r\n');

    const bigBody = await verdict(lab.port, httpRequest('/', 'b'.repeat(2048)));
    expect(statusCodes(bigBody)).toEqual([413]);
    const chunked = await verdict(lab.port, head(['POST / HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked']) + `400\r\n${'c'.repeat(1024)}\r\n1\r\nc\r\n0\r\n\r\n`);
    expect(statusCodes(chunked), 'a chunked body that grows over the limit').toEqual([413]);

    const atLimit = await verdict(lab.port, httpRequest('/', 'b'.repeat(1024), 'Connection: close\r\n'));
    expect(atLimit).toBe(httpResponse('b'.repeat(1024), true));
    await guard.verify();
    await stopCleanly(lab);
  });

  it(`case 6: ${Object.keys(MALFORMED).length} malformed and smuggling requests each get 400 and a close, never a hung socket`, { timeout: 120_000 }, async () => {
    // Long idle and header timeouts: only the parser may end these connections within the verdict timeout.
    const lab = await start(['--quiet', '--protocol', 'http', '--idle-timeout', '60', '--header-timeout', '60']);
    const guard = await NothingLost.begin(lab, 'http');
    // Each on its own connection, all at once (lab 01 takes them one after another from its queue).
    // A thread-per-connection lab starts a thread, a whole V8 isolate (about 120 ms of CPU), for
    // each: 32 at once on a busy 2-core machine outlast the verdict timeout, which is there to
    // catch a hung socket, so there they go 8 at a time.
    const cases = Object.entries(MALFORMED);
    const atOnce = variant.threadPerConnection === true ? 8 : cases.length;
    const replies: string[] = [];
    for (let first = 0; first < cases.length; first += atOnce) {
      const batch = cases.slice(first, first + atOnce);
      replies.push(...(await Promise.all(batch.map(([, raw]) => verdict(lab.port, raw).catch((error: Error) => `no verdict: ${error.message}`)))));
    }
    for (const [i, [name]] of cases.entries()) {
      const reply = replies[i]!;
      // The parser always answers 400 before it closes: a plain close (an empty reply) fails too.
      expect(statusCodes(reply), `${name}: ${JSON.stringify(reply.slice(0, 120))}`).toEqual([400]);
      expect(reply, name).toContain('Connection: close\r\n');
    }

    const hugeLine = await verdict(lab.port, head([`GET /${'a'.repeat(70_000)} HTTP/1.1`, 'Host: x']));
    expect(statusCodes(hugeLine), 'a request line over the head limit').toEqual([431]);

    // A valid request carrying a smuggled one behind it: the first is answered, the second refused.
    const smuggled = await verdict(
      lab.port,
      httpRequest('/first') + head(['POST /second HTTP/1.1', 'Host: x', 'Content-Length: 6', 'Transfer-Encoding: chunked']) + '0\r\n\r\nG',
    );
    expect(statusCodes(smuggled)).toEqual([200, 400]);
    expect(smuggled.startsWith(httpResponse('/first'))).toBe(true);
    await guard.verify();
    await stopCleanly(lab);
  });

  it('case 6: after a refused request or a Connection: close, nothing pipelined behind it in the same write is answered', async () => {
    const lab = await start(['--quiet', '--protocol', 'http', '--idle-timeout', '60', '--header-timeout', '60']);
    const guard = await NothingLost.begin(lab, 'http');
    const twoHosts = head(['GET / HTTP/1.1', 'Host: x', 'Host: x']);
    const expectContinue = head(['POST /up HTTP/1.1', 'Host: x', 'Content-Length: 5', 'Expect: 100-continue']);
    const reason = 'more than one Host header\n';
    const refused =
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${reason.length}\r\nConnection: close\r\n\r\n${reason}`;
    // Each sequence in one write: a client matching responses by order must get the first one alone.
    expect(await verdict(lab.port, twoHosts + expectContinue + 'hello'), 'a 400, then a 100-continue request').toBe(refused);
    expect(await verdict(lab.port, twoHosts + httpRequest('/next', 'x')), 'a 400, then a request').toBe(refused);
    expect(await verdict(lab.port, httpRequest('/a', 'bye', 'Connection: close\r\n') + expectContinue + twoHosts), 'Connection: close, then more').toBe(
      httpResponse('bye', true),
    );
    await guard.verify();
    await stopCleanly(lab);
  });

  it('HTTP/1.0 keep-alive: three requests on one connection, each answered with Connection: keep-alive', async () => {
    const lab = await start(['--quiet', '--protocol', 'http']);
    const client = await EchoClient.connect(lab.port, { keep: true });
    let expected = '';
    for (let i = 1; i <= 3; i++) {
      const body = `old client ${i}`;
      await client.send(Buffer.from(`POST /old/${i} HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
      expected +=
        'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
        `Content-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`;
      // One response at a time, as `ab -k` does: the next request goes out only after this one.
      await client.waitForReceived(expected.length);
    }
    expect(client.receivedBytes.toString('latin1')).toBe(expected);
    expect(client.finReceived, 'the server kept the connection open').toBe(false);
    client.end();
    await client.waitForEnd();
    expect(client.receivedBytes.toString('latin1'), 'nothing after the third response').toBe(expected);
    await stopCleanly(lab);
  });

  it('Expect: 100-continue with a 500 KiB body: 100 Continue before any body byte is sent, then the echo', async () => {
    const lab = await start(['--quiet', '--protocol', 'http']);
    const client = await EchoClient.connect(lab.port, { keep: true });
    const body = Buffer.alloc(500 * 1024, 'x');
    const requestHead = `POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`;
    const interim = 'HTTP/1.1 100 Continue\r\n\r\n';
    await client.send(Buffer.from(requestHead, 'latin1'));
    // A client like curl waits here (for 1 s) before it sends the body anyway: a server that never
    // says 100 fails this wait, since nothing else would ever arrive.
    await client.waitForReceived(interim.length);
    expect(client.receivedBytes.toString('latin1')).toBe(interim);
    expect(client.sent, 'no body byte sent yet').toBe(Buffer.byteLength(requestHead));

    await client.send(body);
    const response = Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'),
      body,
    ]);
    await client.waitForReceived(interim.length + response.length);
    expect(client.receivedBytes.equals(Buffer.concat([Buffer.from(interim, 'latin1'), response])), 'the 100, then exactly the echo').toBe(true);
    client.end();
    await client.waitForEnd();
    expect(client.received).toBe(interim.length + response.length);
    await stopCleanly(lab);
  });

  it('an HTTP/1.1 request without Host gets 400 and a close (RFC 9112 §3.2)', async () => {
    const lab = await start(['--quiet', '--protocol', 'http']);
    const reason = 'HTTP/1.1 request without a Host header\n';
    expect(await verdict(lab.port, 'GET /nohost HTTP/1.1\r\n\r\n')).toBe(
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${reason.length}\r\nConnection: close\r\n\r\n${reason}`,
    );
    await stopCleanly(lab);
  });
});
