/**
 * The echo protocols' core: bytes in, replies out, and when to close. No sockets, no timers, no I/O.
 *
 * Every lab moves bytes its own way and runs the work wherever its model says, but all of them
 * speak through the connection contract (conversation.ts), so a difference measured between two
 * labs is a difference between I/O models and never between two implementations of the protocol.
 *
 * The core is split in two on purpose:
 *   1. A conversation per connection frames the byte stream into jobs (`Carrier.answer`). It is
 *      stateful and cheap, and always runs where the socket is.
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
 *     closes the connection (the framing is http-framing.ts, shared with the file server).
 *     `GET /healthz` is the health check (health.ts), not an echo.
 */

import type { Carrier, Conversation, HttpErrorStatus, Job, ProtocolConfig } from './conversation.js';
import { connectionHeader, HttpFraming } from './http-framing.js';
import type { RequestHead } from './http-parser.js';
import { healthReply } from './health.js';
import { doWork, type WorkSpec } from './work.js';

export type { ConnectionHeader, HttpErrorStatus, Job, ProtocolConfig, ProtocolName } from './conversation.js';
export { PROTOCOLS } from './conversation.js';

export class EchoConversation implements Conversation {
  readonly requestArriving = 0;
  readonly waitsForRequests = false;
  readonly endsOnStop = false;
  readonly #carrier: Carrier;

  constructor(carrier: Carrier) {
    this.#carrier = carrier;
  }

  start(): void {}

  receive(chunk: Buffer): void {
    this.#carrier.answer({ kind: 'echo', data: chunk });
  }

  end(): void {
    this.#carrier.close();
  }

  stop(): void {
    // A byte stream has no request boundary: the client decides when it is done (or the
    // shutdown deadline does).
  }

  release(): void {}
}

export class HttpConversation extends HttpFraming {
  readonly #splitReplies: boolean;

  constructor(config: ProtocolConfig, carrier: Carrier) {
    super(config, carrier, { keepBody: true, expect: true });
    this.#splitReplies = config.splitReplies === true;
  }

  protected request(head: RequestHead, received: Buffer, keepAlive: boolean): { answer: Job[]; keepAlive: boolean } {
    const body = received.length > 0 ? received : Buffer.from(head.target);
    const connection = connectionHeader(keepAlive, head);
    if (this.#splitReplies && head.method !== 'HEAD') {
      // The experiment switch: the same reply as two jobs, so it leaves in two writes.
      return { answer: [{ kind: 'http', head: true, body, connection }, { kind: 'http-body', body }], keepAlive };
    }
    return { answer: [{ kind: 'http', head: head.method === 'HEAD', body, connection }], keepAlive };
  }
}

/** The bytes a job carries from the client (an echo chunk, a request body), if any: for test-only markers. */
export function jobPayload(job: Job): Uint8Array | undefined {
  return job.kind === 'echo' ? job.data : job.kind === 'http' ? job.body : undefined;
}

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
