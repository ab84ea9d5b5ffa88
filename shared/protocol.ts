/**
 * The protocol core: bytes in, replies out, and whether to close. No sockets, no timers, no I/O.
 *
 * Every lab moves bytes its own way and runs the work wherever its model says, but all of them
 * speak through this module, so a difference measured between two labs is a difference between
 * I/O models and never between two implementations of the protocol.
 *
 * The core is split in two on purpose:
 *   1. A `Session` per connection frames the byte stream into jobs. It is stateful and cheap, and
 *      always runs where the socket is.
 *   2. `respond(job)` turns one job into reply bytes, including the simulated CPU work. It is pure,
 *      and a job is plain data, so the worker-pool lab can run it on another thread.
 *
 * Protocols:
 *   - echo (RFC 862): every chunk received is one job whose reply is the chunk itself. When the
 *     client half-closes, everything already received is still answered, then the server closes.
 *   - http: HTTP/1.1 echo for load tools. 200 with the request body (or, for a request without a
 *     body, its target) as an application/octet-stream body; keep-alive and pipelining; framing
 *     errors answer 400, an oversized head 431, an oversized body 413, and then close.
 */

import { RequestParser, type RequestHead } from './http-parser.js';
import { doWork, type WorkSpec } from './work.js';

export type ProtocolName = 'echo' | 'http';
export const PROTOCOLS: readonly ProtocolName[] = ['echo', 'http'];

export interface ProtocolConfig {
  readonly protocol: ProtocolName;
  /** Largest request head (request line plus headers) accepted, in bytes; http only. */
  readonly maxHeaderBytes: number;
  /** Largest request body accepted, in bytes; http only. Also bounds the reply to one request. */
  readonly maxBodyBytes: number;
}

/** One unit of work. Plain data, so it survives structured cloning into a worker thread. */
export type Job =
  | { readonly kind: 'echo'; readonly data: Uint8Array }
  | { readonly kind: 'http'; readonly head: boolean; readonly body: Uint8Array; readonly keepAlive: boolean }
  | { readonly kind: 'http-error'; readonly status: 400 | 413 | 431; readonly reason: string };

/** What one call into a session produced: jobs to answer in order, then close if `close`. */
export interface Step {
  readonly jobs: Job[];
  readonly close: boolean;
}

export interface Session {
  /** Frames newly received bytes. */
  receive(chunk: Buffer): Step;
  /** The peer half-closed (FIN). */
  end(): Step;
  /**
   * The server is shutting down: answer what is in progress, take nothing new. Returns true when
   * the connection is between requests and can be closed right away.
   */
  stopAfterCurrent(): boolean;
  /** True while part of an http request head has arrived but not all of it (for header timeouts). */
  readonly headPending: boolean;
  /**
   * The connection is gone: release what the session holds outside the JS heap (the http
   * parser's native half). An http session also does this by itself once it will parse nothing
   * more (after an error, a final request or the peer's FIN).
   */
  close(): void;
}

export function createSession(config: ProtocolConfig): Session {
  return config.protocol === 'echo' ? new EchoSession() : new HttpSession(config);
}

const NOTHING: Step = { jobs: [], close: false };
const CLOSE: Step = { jobs: [], close: true };

class EchoSession implements Session {
  readonly headPending = false;

  receive(chunk: Buffer): Step {
    return { jobs: [{ kind: 'echo', data: chunk }], close: false };
  }

  end(): Step {
    return CLOSE;
  }

  stopAfterCurrent(): boolean {
    // A byte stream has no request boundary: the client decides when it is done (or the
    // shutdown deadline does).
    return false;
  }

  close(): void {}
}

class HttpSession implements Session {
  readonly #parser: RequestParser;
  readonly #maxBodyBytes: number;
  /** Between the first byte of a request and the end of its head. */
  #inHead = false;
  #head: RequestHead | undefined;
  #body: Buffer[] = [];
  #bodyBytes = 0;
  #jobs: Job[] = [];
  /** A framing error not yet turned into a reply. */
  #failure: Job | undefined;
  /** Nothing more will be read: after an error, a final request, or the peer's FIN. */
  #done = false;
  /** The server is shutting down: the request in progress is the last one. */
  #stopping = false;

  constructor(config: ProtocolConfig) {
    this.#maxBodyBytes = config.maxBodyBytes;
    this.#parser = new RequestParser(config.maxHeaderBytes, {
      onBegin: () => {
        this.#inHead = true;
      },
      onHead: (head) => {
        this.#inHead = false;
        this.#head = head;
        if (head.contentLength !== undefined && head.contentLength > this.#maxBodyBytes) {
          this.#fail(413, `body of ${head.contentLength} bytes is over the ${this.#maxBodyBytes}-byte limit`);
        }
      },
      onBody: (chunk) => {
        if (this.#done) return;
        this.#bodyBytes += chunk.length;
        if (this.#bodyBytes > this.#maxBodyBytes) {
          this.#fail(413, `body is over the ${this.#maxBodyBytes}-byte limit`);
          return;
        }
        // llhttp hands out views into the read buffer, which the caller may reuse: copy.
        this.#body.push(Buffer.from(chunk));
      },
      onComplete: () => this.#complete(),
    });
  }

  get headPending(): boolean {
    return this.#inHead && !this.#done;
  }

  receive(chunk: Buffer): Step {
    if (this.#done) return NOTHING;
    const failure = this.#parser.feed(chunk);
    if (failure && !this.#done) this.#fail(failure.status, failure.reason);
    return this.#takeStep();
  }

  end(): Step {
    if (!this.#done) this.#parser.finish();
    this.#done = true;
    return this.#takeStep();
  }

  stopAfterCurrent(): boolean {
    this.#stopping = true;
    const idle = !this.#inHead && this.#head === undefined;
    if (idle) {
      this.#done = true;
      this.close();
    }
    return idle;
  }

  close(): void {
    this.#parser.close();
  }

  #complete(): void {
    const head = this.#head;
    if (this.#done || !head) return;
    this.#head = undefined;
    const body = this.#body.length > 0 ? Buffer.concat(this.#body, this.#bodyBytes) : Buffer.from(head.target);
    this.#body = [];
    this.#bodyBytes = 0;
    // An upgrade request hands the connection to another protocol; we speak only HTTP/1.1, so
    // answer it as a plain request and close.
    const keepAlive = head.keepAlive && !head.upgrade && !this.#stopping;
    this.#jobs.push({ kind: 'http', head: head.method === 'HEAD', body, keepAlive });
    if (!keepAlive) this.#done = true;
  }

  #fail(status: 400 | 413 | 431, reason: string): void {
    this.#failure = { kind: 'http-error', status, reason };
    this.#done = true;
  }

  /** Called after the parser returned, never from one of its callbacks. */
  #takeStep(): Step {
    const jobs = this.#jobs;
    this.#jobs = [];
    if (this.#failure) jobs.push(this.#failure);
    this.#failure = undefined;
    // Nothing more will be parsed: free the native parser now rather than at some later GC.
    if (this.#done) this.close();
    return jobs.length === 0 && !this.#done ? NOTHING : { jobs, close: this.#done };
  }
}

const STATUS_TEXT = { 200: 'OK', 400: 'Bad Request', 413: 'Content Too Large', 431: 'Request Header Fields Too Large' };

/**
 * Produces the reply bytes for one job, doing the configured CPU work first. Pure: it may run on
 * any thread, and it returns the echo payload itself rather than a copy when it can.
 */
export function respond(job: Job, work: WorkSpec): Uint8Array {
  switch (job.kind) {
    case 'echo':
      doWork(work, job.data.length);
      return job.data;
    case 'http': {
      doWork(work, job.body.length);
      const head =
        'HTTP/1.1 200 OK\r\n' +
        'Content-Type: application/octet-stream\r\n' +
        `Content-Length: ${job.body.length}\r\n` +
        (job.keepAlive ? '' : 'Connection: close\r\n') +
        '\r\n';
      return job.head ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), job.body]);
    }
    case 'http-error': {
      const body = `${job.reason}\n`;
      return Buffer.from(
        `HTTP/1.1 ${job.status} ${STATUS_TEXT[job.status]}\r\n` +
          'Content-Type: text/plain; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'Connection: close\r\n' +
          '\r\n' +
          body,
        'latin1',
      );
    }
  }
}
