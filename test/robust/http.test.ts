/**
 * Robust suite, HTTP mode (case 6): a head sent a byte at a time, heads and bodies over their
 * limits, and a corpus of malformed and request-smuggling inputs. Every bad request must end in
 * `400` (or `431`/`413` for the limits) and a close, or a plain close; never in a socket left
 * hanging, and never in a second request smuggled past the first.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs } from '../../bench/lib/launch.js';
import { labCases } from '../helpers/labs.js';
import { destroyAllEchoClients, EchoClient } from './helpers/echo-client.js';
import { httpRequest, httpResponse, statusCodes } from './helpers/http.js';
import { recordMeasurement } from './helpers/measure.js';
import { NothingLost, stopCleanly } from './helpers/nothing-lost.js';

afterEach(async () => {
  destroyAllEchoClients();
  await stopAllLabs();
});

/** How long a rejected request may take to be answered and closed. A hung socket never is. */
const VERDICT_TIMEOUT_MS = 5000;

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

describe.each(labCases())('lab %s', ({ id, start }) => {
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
    for (const [name, raw] of Object.entries(MALFORMED)) {
      const reply = await verdict(lab.port, raw).catch((error: Error) => `no verdict: ${error.message}`);
      // A close without any reply would be acceptable too; these parsers always say 400 first.
      expect(reply === '' || statusCodes(reply).join() === '400', `${name}: ${JSON.stringify(reply.slice(0, 120))}`).toBe(true);
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
});
