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
 *     body, its target) as an application/octet-stream body; keep-alive and pipelining (HTTP/1.0
 *     too, when the client asks for keep-alive); `Expect: 100-continue` answered with an interim
 *     100 as soon as the head is accepted. Framing errors and a missing or repeated Host answer
 *     400, an oversized head 431, an oversized body 413, any other expectation 417; each then
 *     closes the connection. `GET /healthz` is the health check (shared/health.ts), not an echo.
 */

import { RequestParser, type RequestHead } from './http-parser.js';
import { doWork, type WorkSpec } from './work.js';
import { FilesSession, type FileJob } from './files.js';
import { healthJob, healthReply, type HealthJob } from './health.js';

export type ProtocolName = 'echo' | 'http' | 'chat' | 'files';
/** chat is not framed here: it has its own core (shared/chat.ts, shared/room.ts), served by shared/chat-socket.ts. */
export const PROTOCOLS: readonly ProtocolName[] = ['echo', 'http', 'chat', 'files'];

export interface ProtocolConfig {
  readonly protocol: ProtocolName;
  /** Largest request head (request line plus headers) accepted, in bytes; http only. */
  readonly maxHeaderBytes: number;
  /** Largest request body accepted, in bytes; http only. Also bounds the reply to one request. */
  readonly maxBodyBytes: number;
  /**
   * An experiment switch for the Nagle experiment (make nagle), off in normal use: each http reply
   * becomes two jobs, its head and then its body, so every lab writes it with two writes.
   */
  readonly splitReplies?: boolean;
  /** files: the directory served, as realpath(3) gives it (shared/file-open.ts `openRoot`). */
  readonly root?: string;
}

/**
 * One unit of work. Plain data, so it survives structured cloning into a worker thread.
 *
 * `http-continue` is the interim `100 Continue`: a reply like any other, so every lab sends it
 * through the path it already has, in order before the final response. It costs no work.
 */
export type Job =
  | { readonly kind: 'echo'; readonly data: Uint8Array }
  /** `head`: reply with the head alone (a HEAD request, or the first part of a split reply). */
  | { readonly kind: 'http'; readonly head: boolean; readonly body: Uint8Array; readonly connection: ConnectionHeader }
  | { readonly kind: 'http-continue' }
  /** The body of a split reply (`splitReplies`), after a head-only `http` job: costs no work. */
  | { readonly kind: 'http-body'; readonly body: Uint8Array }
  | { readonly kind: 'http-error'; readonly status: HttpErrorStatus; readonly reason: string }
  /** `GET /healthz` (http and files): liveness and readiness (shared/health.ts), without the --work-us work. */
  | HealthJob
  /** files: a request for a file, answered by the lab's own send path (shared/files.ts), never by `respond`. */
  | FileJob;

/**
 * What a 200's Connection header says. An HTTP/1.1 connection stays open unless someone says
 * `close`, so a kept one needs no header (`undefined`). An HTTP/1.0 client assumes the server
 * closes after each response unless it says `keep-alive`: without it, `ab -k` waits for a FIN that
 * never comes. Node's http server sends the same two values.
 */
export type ConnectionHeader = 'keep-alive' | 'close' | undefined;

export type HttpErrorStatus = 400 | 413 | 417 | 431;

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
  if (config.protocol === 'chat') throw new Error('chat has its own session (shared/chat.ts): a bug if this runs');
  if (config.protocol === 'files') return new FilesSession(config);
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
  readonly #splitReplies: boolean;
  /** Between the first byte of a request and the end of its head. */
  #inHead = false;
  #head: RequestHead | undefined;
  #body = new BodyBytes();
  #jobs: Job[] = [];
  /**
   * Nothing more will be read: after an error, a final request, or the peer's FIN. llhttp goes on
   * parsing the rest of the chunk it was fed and calling back; every callback checks this first,
   * so nothing behind the reply that decided the close is answered, and its reason stands.
   */
  #done = false;
  /** The server is shutting down: the request in progress is the last one. */
  #stopping = false;

  constructor(config: ProtocolConfig) {
    this.#maxBodyBytes = config.maxBodyBytes;
    this.#splitReplies = config.splitReplies === true;
    this.#parser = new RequestParser(config.maxHeaderBytes, {
      onBegin: () => {
        if (!this.#done) this.#inHead = true;
      },
      onHead: (head) => {
        if (!this.#done) this.#accept(head);
      },
      onBody: (chunk) => {
        if (this.#done) return;
        if (this.#body.length + chunk.length > this.#maxBodyBytes) {
          this.#fail(413, `body is over the ${this.#maxBodyBytes}-byte limit`);
          return;
        }
        this.#body.append(chunk, this.#head?.contentLength);
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
    const expectation = head.version === '1.1' ? head.expect : undefined;
    if (expectation !== undefined && expectation.trim().toLowerCase() !== '100-continue') {
      return this.#fail(417, 'the only expectation this server can meet is 100-continue');
    }
    if (head.contentLength !== undefined && head.contentLength > this.#maxBodyBytes) {
      return this.#fail(413, `body of ${head.contentLength} bytes is over the ${this.#maxBodyBytes}-byte limit`);
    }
    // Sent even when the body already arrived with the head: RFC 9110 allows leaving it out then,
    // but a client must accept it, and the reply bytes stay independent of how TCP cut the stream.
    if (expectation !== undefined) this.#jobs.push({ kind: 'http-continue' });
  }

  #complete(): void {
    const head = this.#head;
    if (this.#done || !head) return;
    this.#head = undefined;
    const body = this.#body.length > 0 ? this.#body.take() : Buffer.from(head.target);
    // An upgrade request hands the connection to another protocol; we speak only HTTP/1.1, so
    // answer it as a plain request and close.
    const keepAlive = head.keepAlive && !head.upgrade && !this.#stopping;
    const connection = !keepAlive ? 'close' : head.version === '1.1' ? undefined : 'keep-alive';
    const health = healthJob(head, this.#stopping, connection);
    if (health) this.#jobs.push(health);
    else if (this.#splitReplies && head.method !== 'HEAD') {
      // The experiment switch: the same reply as two jobs, so it leaves in two writes.
      this.#jobs.push({ kind: 'http', head: true, body, connection }, { kind: 'http-body', body });
    } else {
      this.#jobs.push({ kind: 'http', head: head.method === 'HEAD', body, connection });
    }
    if (!keepAlive) this.#done = true;
  }

  /** The error reply takes its place after the replies already decided; a later failure changes nothing. */
  #fail(status: HttpErrorStatus, reason: string): void {
    if (this.#done) return;
    this.#jobs.push({ kind: 'http-error', status, reason });
    this.#done = true;
  }

  /** Called after the parser returned, never from one of its callbacks. */
  #takeStep(): Step {
    const jobs = this.#jobs;
    this.#jobs = [];
    // Nothing more will be parsed: free the native parser now rather than at some later GC.
    if (this.#done) this.close();
    return jobs.length === 0 && !this.#done ? NOTHING : { jobs, close: this.#done };
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

const STATUS_TEXT: Record<HttpErrorStatus, string> = {
  400: 'Bad Request',
  413: 'Content Too Large',
  417: 'Expectation Failed',
  431: 'Request Header Fields Too Large',
};

/** The whole interim response. One shared buffer: nothing writes into a reply once made. */
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

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
        (job.connection ? `Connection: ${job.connection}\r\n` : '') +
        '\r\n';
      return job.head ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), job.body]);
    }
    case 'health':
      return healthReply(job);
    case 'http-continue':
      return CONTINUE;
    case 'http-body':
      return job.body;
    case 'file':
      throw new Error('a file job is answered by the lab\'s send path (shared/file-open.ts answerFile), not by respond()');
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
