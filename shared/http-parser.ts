/**
 * HTTP/1.1 request framing with llhttp, the parser inside Node's own `http` module.
 *
 * Why this parser: request smuggling lives in the corners of HTTP framing (Content-Length together
 * with Transfer-Encoding, duplicate lengths, bare LF, bad chunk sizes). llhttp in strict mode
 * rejects all of them and is the most exercised HTTP/1.1 parser in the Node world; a hand-written
 * parser would be the least trustworthy code in the project.
 *
 * The head limit is counted here, on the wire: every byte from a request's first to the blank line
 * that ends its head, CRLFs, colons and spaces included. Node's own count (names, values and the
 * target alone) let 16,000 empty `X:` lines, a 64 KB head, through a 16 KiB limit. To know where
 * each head starts, every `execute` ends where a message may: at the end of a Content-Length body,
 * or just after a blank line (`\r\n\r\n`), which ends every head and every chunked body.
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

/** Where the parser is in the stream: it decides where the next `execute` must stop. */
type Framing =
  /** Between requests or in a head: bytes count against the head limit; stop after a blank line. */
  | { readonly part: 'head' }
  /** A Content-Length body: stop where it ends. */
  | { readonly part: 'sized body'; left: number }
  /** A chunked body: it ends with a blank line (after the last chunk, or its trailers). */
  | { readonly part: 'chunked body' };

const CRLFCRLF = [0x0d, 0x0a, 0x0d, 0x0a] as const;
const BLANK_LINE = Buffer.from(CRLFCRLF);

/** One connection's incremental request parser. `feed` returns a failure once and is then dead. */
export class RequestParser {
  readonly #parser = new HTTPParser();
  #closed = false;
  #target = '';
  #headers: string[] = [];
  readonly #maxHeaderBytes: number;
  #framing: Framing = { part: 'head' };
  /** Head bytes of the request in progress (or before it starts), as they came. */
  #headBytes = 0;
  /** How much of `\r\n\r\n` the bytes fed so far end with (0 to 3). */
  #blankLineMatched = 0;

  constructor(maxHeaderBytes: number, events: ParserEvents) {
    const p = this.#parser;
    this.#maxHeaderBytes = maxHeaderBytes;
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
      const facts = headerFacts(all);
      // llhttp knows the body's framing now; the next execute stops where the body ends.
      const chunked = all.some((field, i) => i % 2 === 0 && field.toLowerCase() === 'transfer-encoding');
      this.#framing = chunked ? { part: 'chunked body' } : { part: 'sized body', left: facts.contentLength ?? 0 };
      this.#blankLineMatched = 0;
      events.onHead({
        method: methods[method] ?? 'UNKNOWN',
        target,
        version: `${major}.${minor}`,
        ...facts,
        keepAlive,
        upgrade,
      });
      return 0;
    };
    p[HTTPParser.kOnBody] = (chunk: Buffer) => {
      if (this.#framing.part === 'sized body') this.#framing.left -= chunk.length;
      events.onBody(chunk);
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      this.#framing = { part: 'head' };
      this.#headBytes = 0;
      this.#blankLineMatched = 0;
      events.onComplete();
    };
  }

  /**
   * Parses `data` in pieces that each end where a message may end (see the top of this file),
   * counting head bytes as they come: a head over the limit is refused before llhttp sees it.
   */
  feed(data: Buffer): ParseFailure | undefined {
    for (let offset = 0; offset < data.length; ) {
      const framing = this.#framing;
      const end = framing.part === 'sized body' && framing.left > 0 ? Math.min(data.length, offset + framing.left) : this.#afterBlankLine(data, offset);
      if (framing.part === 'head') {
        this.#headBytes += end - offset;
        if (this.#headBytes > this.#maxHeaderBytes) return { status: 431, reason: `request head over the ${this.#maxHeaderBytes}-byte limit` };
      }
      const result = this.#parser.execute(offset === 0 && end === data.length ? data : data.subarray(offset, end));
      if (typeof result !== 'number') return failure(result);
      offset = end;
    }
    return undefined;
  }

  /** Just after the first blank line in data[from..], or data's end; carries a partial match over. */
  #afterBlankLine(data: Buffer, from: number): number {
    let matched = this.#blankLineMatched;
    let i = from;
    // A blank line begun in the last piece.
    while (matched > 0 && i < data.length) {
      const byte = data[i++]!;
      matched = byte === CRLFCRLF[matched] ? matched + 1 : byte === 0x0d ? 1 : 0;
      if (matched === 4) {
        this.#blankLineMatched = 0;
        return i;
      }
    }
    if (i < data.length) {
      const at = data.indexOf(BLANK_LINE, i);
      if (at >= 0) {
        this.#blankLineMatched = 0;
        return at + BLANK_LINE.length;
      }
      // How much of a blank line the piece ends with, for the next one.
      for (matched = Math.min(3, data.length - i); matched > 0; matched--) {
        if (data.subarray(data.length - matched).equals(BLANK_LINE.subarray(0, matched))) break;
      }
    }
    this.#blankLineMatched = matched;
    return data.length;
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
