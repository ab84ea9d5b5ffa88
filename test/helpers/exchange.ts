/**
 * Exchanges the lab suites share: one echo round trip on an open connection, the http request
 * and response the labs' http echo speaks, and a clean stop.
 */

import { expect } from 'vitest';
import type { LabProcess } from '../../harness/launch.js';
import type { Client } from './tcp.js';

/**
 * One exchange on an open connection: sends `message`, returns the next `replyLength` bytes
 * received (for echo, the same length as the message).
 */
export async function roundTrip(client: Client, message: Buffer | string, replyLength = Buffer.byteLength(message)): Promise<string> {
  const before = client.received().length;
  client.socket.write(message);
  const all = await client.waitForBytes(before + replyLength);
  return all.subarray(before, before + replyLength).toString();
}

export const httpRequest = (target: string, body = '', extra = '') =>
  `POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

export const httpResponse = (body: string, close = false) =>
  'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n' +
  `Content-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;

/** SIGTERM, and the lab must exit 0 on its own: a clean shutdown. */
export async function stopCleanly(lab: LabProcess): Promise<void> {
  const { code, signal } = await lab.stop('SIGTERM');
  expect({ code, signal }).toEqual({ code: 0, signal: null });
}
