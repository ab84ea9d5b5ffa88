/**
 * The health check over HTTP, framed once for every HTTP protocol (http-framing.ts: the http echo
 * and the file server), so every lab answers it the same way without a line of its own.
 *
 * `GET /healthz` (or HEAD) answers 200 `{"live":true,"ready":true}` while the lab takes new work,
 * and 503 `{"live":true,"ready":false}` once shutdown has begun draining (the conversation's
 * stop()): a load balancer stops sending it new work while what is in flight finishes.
 * Live, because whatever answers at all is alive; a lab whose loop is stuck answers nothing, which
 * a probe with a deadline reads as not live (labs/probe.ts).
 *
 * Catch: a drain closes the listening socket at once, so only a request already on an open
 * connection can hear the 503; a new probe is refused, which says the same thing less politely.
 * The job does none of the --work-us work: a probe should show whether the loop answers, not add
 * to its load.
 */

import type { ConnectionHeader, HealthJob } from './conversation.js';
import type { RequestHead } from './http-parser.js';

export type { HealthJob };

export const HEALTH_PATH = '/healthz';

/** The health job for a request to HEALTH_PATH (a query string is ignored), or undefined for any other request. */
export function healthJob(head: Pick<RequestHead, 'method' | 'target'>, stopping: boolean, connection: ConnectionHeader): HealthJob | undefined {
  if ((head.method !== 'GET' && head.method !== 'HEAD') || head.target.split('?')[0] !== HEALTH_PATH) return undefined;
  return { kind: 'health', ready: !stopping, head: head.method === 'HEAD', connection };
}

/** The reply's bytes: 200 or 503, a one-line JSON body. */
export function healthReply(job: HealthJob): Uint8Array {
  const body = `${JSON.stringify({ live: true, ready: job.ready })}\n`;
  const head =
    `HTTP/1.1 ${job.ready ? '200 OK' : '503 Service Unavailable'}\r\n` +
    'Content-Type: application/json\r\n' +
    'Cache-Control: no-store\r\n' +
    `Content-Length: ${body.length}\r\n` +
    (job.connection ? `Connection: ${job.connection}\r\n` : '') +
    '\r\n';
  return Buffer.from(job.head ? head : head + body, 'latin1');
}
