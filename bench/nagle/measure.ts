/**
 * The two measurements of the Nagle experiment, each against a running server:
 *
 * - Small writes: 1 MiB sent in writes of one size, with or without TCP_NODELAY, while reading
 *   the echo as it comes: throughput, the segments the client sent (TCP_INFO's tcpi_segs_out)
 *   and the CPU both ends spent.
 * - Split writes: HTTP request/response round trips in which the request goes out as a head and a
 *   body (write, write, read), against one write, and the two ways to batch without waiting:
 *   MSG_MORE on the first write, or TCP_CORK around both.
 */

import * as libc from '../../shared/libc.js';
import { stat } from '../../harness/processes.js';
import { RawClient } from './client.js';

export interface SmallWritesResult {
  readonly writeSize: number;
  readonly noDelay: boolean;
  readonly bytes: number;
  readonly seconds: number;
  readonly writes: number;
  /** Segments the client sent that carried data (its pure ACKs of the echo left out). */
  readonly segmentsOut: number;
  readonly clientCpuMs: number;
  readonly serverCpuMs: number;
}

const ECHO_BYTE = 0x61;

/** Sends `bytes` in writes of `writeSize` and reads every byte of the echo back; times the whole exchange. */
export function smallWrites(host: string, port: number, serverPid: number | undefined, options: { bytes: number; writeSize: number; noDelay: boolean }): SmallWritesResult {
  const { bytes, writeSize, noDelay } = options;
  const client = RawClient.connect(host, port);
  try {
    client.setTcpOption(libc.TCP_NODELAY, noDelay);
    const piece = Buffer.alloc(writeSize, ECHO_BYTE);
    let echoed = 0;
    const onEcho = (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) if (chunk[i] !== ECHO_BYTE) throw new Error(`echo byte ${echoed + i} differs`);
      echoed += chunk.length;
    };
    const before = client.info();
    const cpu = process.cpuUsage();
    const serverBefore = serverPid ? (stat(serverPid)?.cpuMs ?? 0) : 0;
    const start = performance.now();

    let sent = 0;
    let writes = 0;
    while (sent < bytes) {
      const size = Math.min(writeSize, bytes - sent);
      const n = libc.send(client.fd, piece, size, 0);
      writes++;
      if (n > 0) {
        sent += n;
        // Read now and then, so the echo never backs up into the server's send buffer (which
        // would stop it reading, fill ours, and stall both).
        if (writes % 64 === 0) while (client.readAvailable(onEcho) > 0);
        continue;
      }
      const error = libc.errno();
      if (error !== libc.EAGAIN && error !== libc.EINTR) throw libc.callError('send', error);
      client.waitReadableOrWritable();
      while (client.readAvailable(onEcho) > 0);
    }
    client.shutdownWrite();
    for (;;) {
      const n = client.readAvailable(onEcho);
      if (n < 0) break;
      if (n === 0) client.waitReadable();
    }
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    const after = client.info();
    if (echoed !== bytes) throw new Error(`${echoed} of ${bytes} bytes came back`);
    return {
      writeSize,
      noDelay,
      bytes,
      seconds,
      writes,
      segmentsOut: after && before ? after.dataSegsOut - before.dataSegsOut : Number.NaN,
      clientCpuMs: (used.user + used.system) / 1000,
      serverCpuMs: serverPid ? (stat(serverPid)?.cpuMs ?? 0) - serverBefore : Number.NaN,
    };
  } finally {
    client.close();
  }
}

/** How the client sends each request. */
export type RequestPattern = 'one write' | 'two writes' | 'two writes, MSG_MORE' | 'two writes, TCP_CORK';
export const REQUEST_PATTERNS: readonly RequestPattern[] = ['one write', 'two writes', 'two writes, MSG_MORE', 'two writes, TCP_CORK'];

export interface SplitWritesResult {
  readonly pattern: RequestPattern;
  readonly clientNoDelay: boolean;
  /** Each round trip's time, ms, in order: the first few may differ (quick-ACK mode). */
  readonly roundTripMs: readonly number[];
  /** The kernel's delayed-ACK timeout on the client's socket at the end (tcpi_ato), ms. */
  readonly clientAtoMs: number | undefined;
}

const BODY = Buffer.alloc(64, 0x62);
const HEAD = Buffer.from(`POST /nagle HTTP/1.1\r\nHost: nagle\r\nContent-Length: ${BODY.length}\r\n\r\n`, 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n');

/** Reads one HTTP response: the head to its blank line, then Content-Length bytes of body. */
function readResponse(client: RawClient, carry: { bytes: Buffer }): Buffer {
  let buffer = carry.bytes;
  const fill = () => {
    const n = client.readAvailable((chunk) => (buffer = Buffer.concat([buffer, chunk])));
    if (n < 0) throw new Error('the server closed the connection mid-response');
    if (n === 0) client.waitReadable();
  };
  let end: number;
  while ((end = buffer.indexOf(HEAD_END)) < 0) fill();
  const head = buffer.subarray(0, end).toString('latin1');
  if (!head.startsWith('HTTP/1.1 200')) throw new Error(`unexpected response: ${head.split('\r\n')[0]}`);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
  if (!Number.isInteger(length)) throw new Error('response without Content-Length');
  const total = end + HEAD_END.length + length;
  while (buffer.length < total) fill();
  const body = buffer.subarray(end + HEAD_END.length, total);
  carry.bytes = buffer.subarray(total);
  return body;
}

function sendRequest(client: RawClient, pattern: RequestPattern): void {
  switch (pattern) {
    case 'one write':
      client.writeAll(Buffer.concat([HEAD, BODY]));
      return;
    case 'two writes':
      client.writeAll(HEAD);
      client.writeAll(BODY);
      return;
    case 'two writes, MSG_MORE':
      client.writeAll(HEAD, libc.MSG_MORE);
      client.writeAll(BODY);
      return;
    case 'two writes, TCP_CORK':
      client.setTcpOption(libc.TCP_CORK, true);
      client.writeAll(HEAD);
      client.writeAll(BODY);
      client.setTcpOption(libc.TCP_CORK, false);
      return;
  }
}

/** `rounds` request/response round trips on one connection, each timed. */
export function splitWrites(host: string, port: number, options: { pattern: RequestPattern; clientNoDelay: boolean; rounds: number }): SplitWritesResult {
  const client = RawClient.connect(host, port);
  try {
    client.setTcpOption(libc.TCP_NODELAY, options.clientNoDelay);
    const carry = { bytes: Buffer.alloc(0) };
    const roundTripMs: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      const start = performance.now();
      sendRequest(client, options.pattern);
      const body = readResponse(client, carry);
      roundTripMs.push(performance.now() - start);
      if (!body.equals(BODY)) throw new Error('the echoed body differs from the one sent');
    }
    const info = client.info();
    return { pattern: options.pattern, clientNoDelay: options.clientNoDelay, roundTripMs, clientAtoMs: info ? info.atoUs / 1000 : undefined };
  } finally {
    client.close();
  }
}
