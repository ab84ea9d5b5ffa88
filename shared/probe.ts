/**
 * Health probes from outside a lab, the two kinds a supervisor can use and what each can see:
 *
 *   tcp:   connect, then close. Green whenever the kernel completes the handshake, and it does so
 *          into the accept queue whether or not the lab's loop ever accepts: a serial lab serving
 *          someone else, or an event loop stuck in --work-us, stays green. It sees only "the port
 *          is open".
 *   echo:  connect, send one line, expect the same bytes back within the deadline. Green only when
 *          the lab's loop accepted, read, and answered: it sees the model. (A chat room answers a
 *          line with a line to others, not an echo; it is probed with tcp.)
 *   http:  GET /healthz (shared/health.ts) within the deadline: 200 is ready, 503 is live but
 *          draining, no answer is neither.
 *
 * Every probe has one deadline for the whole exchange, and never throws: a refusal, a reset or
 * a timeout is a red result with the reason in a few words.
 */

import net from 'node:net';
import { HEALTH_PATH } from './health.js';

export type ProbeKind = 'tcp' | 'echo' | 'http';
export const PROBE_KINDS: readonly ProbeKind[] = ['tcp', 'echo', 'http'];

export interface ProbeResult {
  readonly kind: ProbeKind;
  /** Green: the check passed within the deadline. */
  readonly ok: boolean;
  /** From connect to the verdict. */
  readonly ms: number;
  /** "connected", "echoed", "200 ready", "503 draining", "timeout", "refused", ... */
  readonly detail: string;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly deadlineMs: number;
}

/** The line the echo probe sends: unique per probe, so a late echo of an earlier probe cannot pass. */
let probes = 0;

/** Runs one probe of `kind` against `target`. */
export function probe(kind: ProbeKind, target: ProbeTarget): Promise<ProbeResult> {
  const started = performance.now();
  const line = `probe ${process.pid} ${++probes}\n`;
  const request = `GET ${HEALTH_PATH} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n`;
  return new Promise((resolve) => {
    let received = '';
    let settled = false;
    const socket = net.connect({ host: target.host, port: target.port });
    const finish = (ok: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ kind, ok, ms: performance.now() - started, detail });
    };
    const timer = setTimeout(() => finish(false, `no answer within ${target.deadlineMs} ms`), target.deadlineMs);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (kind === 'tcp') finish(true, 'connected');
      else socket.write(kind === 'echo' ? line : request);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (kind === 'echo') {
        if (received === line) finish(true, 'echoed');
        else if (!line.startsWith(received)) finish(false, 'wrong bytes back');
        return;
      }
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1];
      if (status === '200') finish(true, '200 ready');
      else if (status === '503') finish(false, '503 draining');
      else if (status) finish(false, `${status} (no ${HEALTH_PATH}?)`);
    });
    socket.on('end', () => finish(false, received ? 'closed mid-answer' : 'closed without an answer'));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(false, error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'ECONNRESET' ? 'reset' : (error.code ?? error.message)));
  });
}

/** One line for a person: "echo probe 127.0.0.1:8080: red, no answer within 500 ms (501 ms)". */
export function probeLine(result: ProbeResult, target: Pick<ProbeTarget, 'host' | 'port'>): string {
  return `${result.kind} probe ${target.host}:${target.port}: ${result.ok ? 'green' : 'red'}, ${result.detail} (${Math.round(result.ms)} ms)`;
}
