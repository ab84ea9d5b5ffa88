/**
 * HTTP/1.1 request framing with llhttp, the parser inside Node's own `http` module.
 *
 * Why this parser: request smuggling lives in the corners of HTTP framing (Content-Length together
 * with Transfer-Encoding, duplicate lengths, bare LF, bad chunk sizes). llhttp in strict mode
 * rejects all of them and is the most exercised HTTP/1.1 parser in the Node world; a hand-written
 * parser would be the least trustworthy code in the project.
 *
 * Simplification: Node exposes llhttp through `_http_common`, an internal module without a
 * documented contract. Its shape has been stable for years and the project pins Node 20, but a
 * Node upgrade is the place to re-check this file first. Nothing else in the project touches it.
 */

import { createRequire } from 'node:module';

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParseError;
  finish(): undefined | ParseError;
  close(): void;
  [callback: number]: unknown;
}
interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}
interface ParseError extends Error {
  code: string;
  reason?: string;
}

const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: LlhttpParserClass;
  methods: string[];
};

export interface RequestHead {
  method: string;
  target: string;
  /** From the request line, e.g. "1.1". llhttp accepts 0.9, 1.0, 1.1 and 2.0 here and refuses the rest. */
  version: string;
  /** Content-Length as sent, or undefined (no body, or chunked). */
  contentLength: number | undefined;
  /** How many Host header lines the head carried: HTTP/1.1 asks for exactly one. */
  hostLines: number;
  /** The Expect header's value (several lines joined with ", ", as RFC 9110 §5.3 allows), or undefined. */
  expect: string | undefined;
  /** llhttp's verdict from the version and the Connection header: HTTP/1.1 unless `close`, HTTP/1.0 if `keep-alive`. */
  keepAlive: boolean;
  upgrade: boolean;
  /** The Range header's value (the files protocol), or undefined; a repeated one is left undefined. */
  range: string | undefined;
}

export interface ParserEvents {
  onBegin(): void;
  onHead(head: RequestHead): void;
  onBody(chunk: Buffer): void;
  onComplete(): void;
}

export type ParseFailure = { status: 400 | 431; reason: string };

/** One connection's incremental request parser. `feed` returns a failure once and is then dead. */
export class RequestParser {
  readonly #parser = new HTTPParser();
  #closed = false;
  #target = '';
  #headers: string[] = [];

  constructor(maxHeaderBytes: number, events: ParserEvents) {
    const p = this.#parser;
    p.initialize(HTTPParser.REQUEST, {}, maxHeaderBytes, HTTPParser.kLenientNone);
    p[HTTPParser.kOnMessageBegin] = () => events.onBegin();
    // llhttp flushes very long heads in pieces before the head is complete.
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      this.#headers.push(...headers);
      this.#target += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (
      major: number,
      minor: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _status: unknown,
      _statusMessage: unknown,
      upgrade: boolean,
      keepAlive: boolean,
    ) => {
      const all = headers ? [...this.#headers, ...headers] : this.#headers;
      const target = this.#target + (url ?? '');
      this.#headers = [];
      this.#target = '';
      events.onHead({
        method: methods[method] ?? 'UNKNOWN',
        target,
        version: `${major}.${minor}`,
        ...headerFacts(all),
        keepAlive,
        upgrade,
      });
      return 0;
    };
    p[HTTPParser.kOnBody] = (chunk: Buffer) => events.onBody(chunk);
    p[HTTPParser.kOnMessageComplete] = () => events.onComplete();
  }

  feed(data: Buffer): ParseFailure | undefined {
    const result = this.#parser.execute(data);
    return typeof result === 'number' ? undefined : failure(result);
  }

  /** The peer closed its side: a half-received message is an error, but one nobody can be told. */
  finish(): void {
    this.#parser.finish();
  }

  /**
   * Frees the native llhttp parser now; nothing may be fed after. Never call it from inside one
   * of the parser's own callbacks (Node's http waits for the stack to unwind for the same reason).
   *
   * Without it the native half lives until V8 happens to collect the wrapper, and V8 does not see
   * its size: under connection churn (`make soak`) the resident memory of lab 04 in http mode
   * climbed ~5 KiB per connection, 57 to 412 MiB in 20 s, with no sign of levelling off. Node's
   * own http server closes (or pools) its parsers for the same reason.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parser.close();
  }
}

/**
 * The few header fields the echo needs, in one pass over llhttp's flat [name, value, ...] list.
 * llhttp has already refused a duplicate or malformed Content-Length, so the first one is the one.
 */
function headerFacts(headers: string[]): Pick<RequestHead, 'contentLength' | 'hostLines' | 'expect' | 'range'> {
  let contentLength: number | undefined;
  let hostLines = 0;
  let expect: string | undefined;
  let range: string | undefined;
  let rangeLines = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    const value = headers[i + 1]!;
    if (name === 'content-length') contentLength ??= Number(value);
    else if (name === 'host') hostLines++;
    else if (name === 'expect') expect = expect === undefined ? value : `${expect}, ${value}`;
    else if (name === 'range' && ++rangeLines === 1) range = value;
  }
  // Two Range lines are two opinions: ignored, so the whole file is sent (RFC 9110 §14.2).
  return { contentLength, hostLines, expect, range: rangeLines === 1 ? range : undefined };
}

function failure(error: ParseError): ParseFailure {
  const reason = error.reason ?? error.code;
  return error.code === 'HPE_HEADER_OVERFLOW' ? { status: 431, reason } : { status: 400, reason };
}
