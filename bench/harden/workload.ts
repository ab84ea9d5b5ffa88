/**
 * A short workload in one protocol, for counting what a sandboxed lab does in steady state: the
 * system calls it makes under load (its allow-list's evidence) and whether it served everything
 * (nothing lost). Each protocol's exchange is checked byte for byte or by status line: calls
 * counted while a server answers wrongly would count nothing worth knowing.
 *
 *   echo:  a few connections echoing 1 KiB messages, one 256 KiB message, connections that echo once and close;
 *   http:  keep-alive requests, Connection: close requests, one request that is not HTTP (400);
 *   chat:  three members: names, /who, lines to the room, leaving;
 *   files: a small and a 1 MiB file, HEAD, a missing file (404), a path out of the root (400/403/404).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProtocolName } from '../../shared/protocol.js';
import { pattern, Peer } from '../load/peer.js';

/** How much of each exchange to run: `rounds` scales every part. */
export interface Exercise {
  readonly port: number;
  readonly rounds: number;
  /**
   * The lab serves one client at a time (its traits' kernelQueueOnly): every exchange uses one
   * connection at a time, and the chat room has one member, since the others would wait unserved.
   */
  readonly oneAtATime?: boolean;
}

/** What one run served, and what went wrong (empty when every exchange was answered exactly). */
export interface Served {
  exchanges: number;
  readonly problems: string[];
}

/** Concurrent connections for an exchange: one where the lab serves one client at a time. */
const width = (exercise: Exercise, wanted: number) => (exercise.oneAtATime ? 1 : wanted);

async function echo(exercise: Exercise, served: Served): Promise<void> {
  const { port, rounds } = exercise;
  const check = (what: string, got: Buffer, want: Buffer) => {
    served.exchanges++;
    if (!got.equals(want)) served.problems.push(`echo: ${what}: ${got.length} bytes back for ${want.length} sent, or different bytes`);
  };
  const peers = await Promise.all(Array.from({ length: width(exercise, 4) }, () => Peer.open(port)));
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      peers.map(async (peer, i) => {
        const message = pattern(1024, round + i);
        peer.socket.write(message);
        check('1 KiB round trip', (await peer.until((r) => r.length >= message.length)) && peer.take(), message);
      }),
    );
  }
  const big = pattern(256 * 1024, 7);
  peers[0]!.socket.write(big);
  check('256 KiB message', (await peers[0]!.until((r) => r.length >= big.length)) && peers[0]!.take(), big);
  await Promise.all(peers.map((peer) => peer.end()));
  for (let i = 0; i < rounds; i++) {
    const peer = await Peer.open(port);
    const message = pattern(64, i);
    peer.socket.end(message);
    check('one echo, then FIN', await peer.until(() => false), message);
    peer.socket.destroy();
  }
}

const request = (target: string, body = '', extra = '') =>
  `POST ${target} HTTP/1.1\r\nHost: lab\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

async function http(exercise: Exercise, served: Served): Promise<void> {
  const { port, rounds } = exercise;
  const answered = (text: string) => /\r\n\r\n/.test(text) && text.length >= Number(/Content-Length: (\d+)/i.exec(text)?.[1] ?? 0) + text.indexOf('\r\n\r\n') + 4;
  const expect = (what: string, text: string, status: RegExp, body?: string) => {
    served.exchanges++;
    if (!status.test(text) || (body !== undefined && !text.endsWith(`\r\n\r\n${body}`))) served.problems.push(`http: ${what}: ${JSON.stringify(text.slice(0, 80))}`);
  };
  const peers = await Promise.all(Array.from({ length: width(exercise, 3) }, () => Peer.open(port)));
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      peers.map(async (peer, i) => {
        const body = `request ${round} on ${i}`;
        peer.socket.write(request(`/r${round}`, body));
        await peer.until((r) => answered(r.toString('latin1')));
        expect('keep-alive request', peer.take().toString('latin1'), /^HTTP\/1\.1 200 /, body);
      }),
    );
  }
  await Promise.all(peers.map((peer) => peer.end()));
  for (let i = 0; i < Math.max(1, rounds / 4); i++) {
    const peer = await Peer.open(port);
    peer.socket.write(request('/close', 'bye', 'Connection: close\r\n'));
    expect('Connection: close', (await peer.until(() => false)).toString('latin1'), /^HTTP\/1\.1 200 /, 'bye');
    peer.socket.destroy();
  }
  const garbage = await Peer.open(port);
  garbage.socket.write('this is not http\r\n\r\n');
  expect('not HTTP', (await garbage.until(() => false)).toString('latin1'), /^HTTP\/1\.1 400 /);
  garbage.socket.destroy();
}

async function chat(exercise: Exercise, served: Served): Promise<void> {
  const { port, rounds } = exercise;
  const members = await Promise.all(Array.from({ length: width(exercise, 3) }, () => Peer.open(port)));
  const has = async (peer: Peer, text: string) => {
    const received = (await peer.until((r) => r.toString('latin1').includes(text))).toString('latin1');
    if (!received.includes(text)) throw new Error(`the connection ended before ${JSON.stringify(text)} (had ${JSON.stringify(received.slice(-80))})`);
    return received;
  };
  await Promise.all(members.map((peer) => has(peer, '\n')));
  await Promise.all(
    members.map(async (peer, i) => {
      peer.socket.write(`/nick m${i}\n`);
      await has(peer, `you are now m${i}\n`);
    }),
  );
  for (let round = 0; round < rounds; round++) {
    const sender = members[round % members.length]!;
    const line = `line ${round}`;
    sender.socket.write(`${line}\n`);
    for (const other of members.filter((peer) => peer !== sender)) {
      served.exchanges++;
      await has(other, `: ${line}\n`);
    }
  }
  members[0]!.socket.write('/who\n');
  served.exchanges++;
  await has(members[0]!, `m${members.length - 1}`);
  await Promise.all(members.map((peer) => peer.end()));
}

/** The tree the files workload serves (made under `dir`), and its root. */
export function filesRoot(dir: string): string {
  const root = path.join(dir, 'root');
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'index.html'), '<p>index</p>\n');
  writeFileSync(path.join(root, 'big.bin'), pattern(1024 * 1024, 3));
  writeFileSync(path.join(dir, 'secret.txt'), 'outside the root\n');
  return root;
}

async function files({ port, rounds }: Exercise, served: Served): Promise<void> {
  // One connection at a time already: each request is its own Connection: close.
  const get = async (line: string, status: RegExp, length?: number) => {
    const peer = await Peer.open(port);
    peer.socket.write(`${line}\r\nHost: lab\r\nConnection: close\r\n\r\n`);
    const reply = await peer.until(() => false);
    peer.socket.destroy();
    served.exchanges++;
    const head = reply.subarray(0, reply.indexOf('\r\n\r\n')).toString('latin1');
    const body = reply.length - head.length - 4;
    if (!status.test(head) || (length !== undefined && body !== length)) served.problems.push(`files: ${line}: ${head.split('\r\n')[0]}, ${body} body bytes`);
  };
  for (let round = 0; round < Math.max(1, rounds / 4); round++) {
    await get('GET / HTTP/1.1', /^HTTP\/1\.1 200 /, 13);
    await get('GET /big.bin HTTP/1.1', /^HTTP\/1\.1 200 /, 1024 * 1024);
    await get('HEAD /big.bin HTTP/1.1', /^HTTP\/1\.1 200 /, 0);
    await get('GET /missing HTTP/1.1', /^HTTP\/1\.1 404 /);
    await get('GET /../secret.txt HTTP/1.1', /^HTTP\/1\.1 40[034] /);
  }
}

const EXERCISES: Record<ProtocolName, (exercise: Exercise, served: Served) => Promise<void>> = { echo, http, chat, files };

/** Runs the protocol's exchanges against a lab on `port`; never throws for a wrong answer, counts it. */
export async function exercise(protocol: ProtocolName, options: Exercise): Promise<Served> {
  const served: Served = { exchanges: 0, problems: [] };
  try {
    await EXERCISES[protocol](options, served);
  } catch (error) {
    served.problems.push(`${protocol}: ${(error as Error).message}`);
  }
  return served;
}
