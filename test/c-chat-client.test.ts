/**
 * The chat load generator (bench/load/c-chat-client.c through bench/load/c-chat.ts) against a
 * real lab and against a small faulty room written here. It must join every member, count every
 * delivery of every completed fan-out, and catch a lost message. No figure is asserted: only
 * counts the servers make certain.
 */

import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startLab, stopAllLabs } from '../harness/launch.js';
import { runCChatClient } from '../bench/load/c-chat.js';

const servers = new Set<net.Server>();

afterEach(async () => {
  for (const server of servers) server.close();
  servers.clear();
  await stopAllLabs();
});

/**
 * A faulty room: it welcomes each member and announces it to those already there (as the Room
 * does: the client waits for every join to be announced), and relays a sender's line to the
 * others `copies` times (2: every message twice), except message `drop` (never relayed).
 */
async function faultyRoom(copies: number, drop = -1): Promise<number> {
  const members = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    for (const other of members) other.write('* someone joined\n');
    members.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => members.delete(socket));
    socket.write('* you are someone\n');
    let partial = '';
    socket.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('latin1')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (Number(line.split(' ')[2]) === drop) continue;
        for (const other of members) if (other !== socket) other.write(`u: ${line}\n`.repeat(copies));
      }
    });
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

describe('c-chat-client', () => {
  it('against lab 04: every member joins; every completed fan-out was delivered to every other member; no errors', async () => {
    const lab = await startLab('04-evented', ['--quiet', '--protocol', 'chat']);
    const result = await runCChatClient({ port: lab.port, members: 20, senders: 2, stuck: 1, size: 64, warmupSeconds: 0, seconds: 0.5 });
    expect(result.joined).toBe(21);
    expect(result.errors).toEqual({ connect: 0, socket: 0, order: 0, missing: 0, total: 0 });
    expect(result.messages).toBeGreaterThan(0);
    expect(result.latencyUs.count).toBe(result.messages);
    expect(result.deliveries).toBeGreaterThanOrEqual(result.messages * 19);
    expect(result.cpu.fraction).toBeGreaterThan(0);
  });

  it('a room that repeats every message: the order check counts it', async () => {
    const port = await faultyRoom(2);
    const result = await runCChatClient({ port, members: 3, senders: 1, stuck: 0, size: 32, warmupSeconds: 0, seconds: 0.3 });
    expect(result.joined).toBe(3);
    expect(result.errors.order).toBeGreaterThan(0);
    expect(result.firstError).toMatch(/out of order or lost/);
  });

  it('a room that loses a message: its sender stalls, and the message is counted missing', async () => {
    const port = await faultyRoom(1, 5);
    const result = await runCChatClient({ port, members: 3, senders: 1, stuck: 0, size: 32, warmupSeconds: 0, seconds: 2.5 });
    expect(result.errors).toMatchObject({ order: 0, missing: 1, total: 1 });
    expect(result.firstError).toMatch(/never reached every member/);
  });
});
