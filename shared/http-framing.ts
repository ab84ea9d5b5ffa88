/**
 * HTTP/1.1 framing for a conversation, written once: the http echo (protocol.ts) and the file
 * server (files.ts) both frame their requests here and differ only in what a whole request becomes.
 *
 * What it owns: request boundaries (llhttp, http-parser.ts), keep-alive and pipelining, the rules
 * every request meets before the application sees it (RFC 9112 §3.2: exactly one Host on HTTP/1.1;
 * a body within --max-body-bytes, refused with 413 as soon as it is known to be over), the header
 * timeout's signal (`requestArriving`: from a request's first byte to its body's last), the shutdown (the request in progress is the last), and the
 * first failure's 400/413/417/431 reply, after which nothing more is answered and the connection
 * closes. With `expect`, `Expect: 100-continue` is answered with an interim 100 as soon as the
 * head is accepted, and any other expectation with 417. And `GET /healthz`, the health check
 * (health.ts): ready until the shutdown begins, then 503; the application never sees it.
 *
 * Actions are collected while llhttp runs and handed to the carrier only after it returns: the
 * carrier may end the connection, and the parser must never be closed from one of its callbacks.
 */

import type { Carrier, ConnectionHeader, Conversation, FileJob, HttpErrorStatus, Job, ProtocolConfig } from './conversation.js';
import { healthJob } from './health.js';
import { RequestParser, type RequestHead } from './http-parser.js';

export interface FramingOptions {
  /** Keep the request body for the application (the echo), or count it against the limit and drop it (files). */
  readonly keepBody: boolean;
  /** Answer `Expect` (100-continue, else 417), or ignore it. */
  readonly expect: boolean;
}

/** The Connection header of a reply, from whether the connection stays open and the request's version. */
export function connectionHeader(keepAlive: boolean, head: RequestHead): ConnectionHeader {
  return !keepAlive ? 'close' : head.version === '1.1' ? undefined : 'keep-alive';
}

export abstract class HttpFraming implements Conversation {
  readonly waitsForRequests = true;
  readonly #carrier: Carrier;
  readonly #parser: RequestParser;
  readonly #maxBodyBytes: number;
  readonly #options: FramingOptions;
  /** Between the first byte of a request and the end of its head. */
  #inHead = false;
  /** Requests begun on this connection: the number of the one arriving. */
  #begun = 0;
  #head: RequestHead | undefined;
  /** The body so far (kept: its bytes; dropped: only counted). */
  #body = new BodyBytes();
  #bodyBytes = 0;
  /** What to hand the carrier once llhttp has returned, in order. */
  #actions: (Job | FileJob)[] = [];
  /**
   * Nothing more will be read: after an error, a final request, or the peer's FIN. llhttp goes on
   * parsing the rest of the chunk it was fed and calling back; every callback checks this first,
   * so nothing behind the reply that decided the close is answered, and its reason stands.
   */
  #done = false;
  #closed = false;
  /** The server is shutting down: the request in progress is the last one. */
  #stopping = false;

  constructor(config: ProtocolConfig, carrier: Carrier, options: FramingOptions) {
    this.#carrier = carrier;
    this.#maxBodyBytes = config.maxBodyBytes;
    this.#options = options;
    this.#parser = new RequestParser(config.maxHeaderBytes, {
      onBegin: () => {
        if (this.#done) return;
        this.#inHead = true;
        this.#begun++;
      },
      onHead: (head) => {
        if (!this.#done) this.#accept(head);
      },
      onBody: (chunk) => {
        if (this.#done) return;
        this.#bodyBytes += chunk.length;
        if (this.#bodyBytes > this.#maxBodyBytes) {
          this.#fail(413, `body is over the ${this.#maxBodyBytes}-byte limit`);
          return;
        }
        if (this.#options.keepBody) this.#body.append(chunk, this.#head?.contentLength);
      },
      onComplete: () => this.#complete(),
    });
  }

  get requestArriving(): number {
    return (this.#inHead || this.#head !== undefined) && !this.#done ? this.#begun : 0;
  }

  /** Between requests (or done): stop() closes now, as it checks below. */
  get endsOnStop(): boolean {
    return this.#done || (!this.#inHead && this.#head === undefined);
  }

  start(): void {}

  receive(chunk: Buffer): void {
    if (this.#done) return;
    const failure = this.#parser.feed(chunk);
    if (failure && !this.#done) this.#fail(failure.status, failure.reason);
    this.#hand();
  }

  end(): void {
    if (!this.#done) this.#parser.finish();
    this.#done = true;
    this.#hand();
  }

  stop(): void {
    this.#stopping = true;
    if (this.#inHead || this.#head !== undefined) return;
    this.#done = true;
    this.#hand();
  }

  release(): void {
    this.#parser.close();
  }

  /**
   * A whole request is in (its head already accepted, its body within the limit). Returns the
   * action that answers it and whether the connection stays open after it: `keepAlive` is what
   * the request and the shutdown allow, and the application may only narrow it.
   */
  protected abstract request(head: RequestHead, body: Buffer, keepAlive: boolean): { readonly answer: readonly (Job | FileJob)[]; readonly keepAlive: boolean };

  /**
   * A whole head is in: refuse the request now if it can never succeed, so a client that waits
   * before sending its body (`Expect: 100-continue`) hears the final status without sending it.
   */
  #accept(head: RequestHead): void {
    this.#inHead = false;
    this.#head = head;
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, and to any
    // request with more than one.
    if (head.hostLines > 1) return this.#fail(400, 'more than one Host header');
    if (head.hostLines === 0 && head.version === '1.1') return this.#fail(400, 'HTTP/1.1 request without a Host header');
    // RFC 9110 §10.1.1: 100-continue is the only expectation there is, and an HTTP/1.0 client
    // cannot have meant it, so its Expect is ignored (as Node's http server does).
    const expectation = this.#options.expect && head.version === '1.1' ? head.expect : undefined;
    if (expectation !== undefined && expectation.trim().toLowerCase() !== '100-continue') {
      return this.#fail(417, 'the only expectation this server can meet is 100-continue');
    }
    if (head.contentLength !== undefined && head.contentLength > this.#maxBodyBytes) {
      return this.#fail(413, `body of ${head.contentLength} bytes is over the ${this.#maxBodyBytes}-byte limit`);
    }
    // Sent even when the body already arrived with the head: RFC 9110 allows leaving it out then,
    // but a client must accept it, and the reply bytes stay independent of how TCP cut the stream.
    if (expectation !== undefined) this.#actions.push({ kind: 'http-continue' });
  }

  #complete(): void {
    const head = this.#head;
    if (this.#done || !head) return;
    this.#head = undefined;
    const body = this.#body.length > 0 ? this.#body.take() : Buffer.alloc(0);
    this.#bodyBytes = 0;
    // An upgrade request hands the connection to another protocol; we speak only HTTP/1.1, so
    // answer it as a plain request and close.
    const allowed = head.keepAlive && !head.upgrade && !this.#stopping;
    // The health check is the framing's, not the application's: the same in every HTTP protocol.
    const health = healthJob(head, this.#stopping, connectionHeader(allowed, head));
    const { answer, keepAlive } = health ? { answer: [health], keepAlive: allowed } : this.request(head, body, allowed);
    this.#actions.push(...answer);
    if (!keepAlive) this.#done = true;
  }

  /** The error reply takes its place after the replies already decided; a later failure changes nothing. */
  #fail(status: HttpErrorStatus, reason: string): void {
    if (this.#done) return;
    this.#actions.push({ kind: 'http-error', status, reason });
    this.#done = true;
  }

  /** Called after the parser returned, never from one of its callbacks. */
  #hand(): void {
    const actions = this.#actions;
    this.#actions = [];
    // Nothing more will be parsed: free the native parser now rather than at some later GC.
    if (this.#done) this.release();
    for (const action of actions) {
      if (action.kind === 'file') this.#carrier.sendFile(action);
      else this.#carrier.answer(action);
    }
    if (this.#done && !this.#closed) {
      this.#closed = true;
      this.#carrier.close();
    }
  }
}

/**
 * A request body as it arrives, copied into as few Buffers as its size allows: one of exactly its
 * Content-Length, or for a chunked body blocks of CHUNKED_BLOCK_BYTES filled one after another.
 * So what a body holds is its length plus under a block, however the client cut it: one Buffer
 * per chunk cost about 190 bytes per byte of one-byte chunks (160 MB for a 1 MiB body).
 */
class BodyBytes {
  #blocks: Buffer[] = [];
  /** Bytes used of the last block. */
  #filled = 0;
  length = 0;

  /** Copies `chunk` in (llhttp's chunk is the caller's to reuse). `expected`: the Content-Length, if any. */
  append(chunk: Buffer, expected: number | undefined): void {
    let from = 0;
    while (from < chunk.length) {
      let block = this.#blocks.at(-1);
      if (!block || this.#filled === block.length) {
        block = Buffer.allocUnsafe(expected ?? CHUNKED_BLOCK_BYTES);
        this.#blocks.push(block);
        this.#filled = 0;
      }
      const copied = chunk.copy(block, this.#filled, from);
      this.#filled += copied;
      from += copied;
    }
    this.length += chunk.length;
  }

  /** The whole body, and empty again. */
  take(): Buffer {
    const blocks = this.#blocks;
    const body = blocks.length === 1 ? blocks[0]!.subarray(0, this.length) : Buffer.concat(blocks, this.length);
    this.#blocks = [];
    this.#filled = 0;
    this.length = 0;
    return body;
  }
}

/** A chunked body's block: big enough that its bookkeeping is noise, small beside --max-body-bytes. */
const CHUNKED_BLOCK_BYTES = 16 * 1024;
