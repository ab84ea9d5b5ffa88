/**
 * The pieces of the idle scenario's climb to 100,000 connections (issue 33), each with data:
 * how many loopback source addresses a level needs, the kernel's files read as text, what one
 * connection costs from two samples, a million on paper, the checks before a level, and a small
 * real hold: a few hundred connections from the C load generator over two source addresses to a
 * server started here, which records where each came from. No benchmark figure is asserted.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { closeFakeServers, testServer } from './helpers/fake-server.js';
import { holdCEchoConnections, parseHold, runCEchoClient, type CHold } from '../bench/load/c-client.js';
import { connectionsPerSource, MAX_SOURCES, sourceAddress, sourcesFor } from '../bench/load/sources.js';
import { parseSlabinfo, parseSockstat, type KernelSample } from '../harness/kernel.js';
import { CPU_BUDGET_US, millionOutlook, perConnection } from '../bench/servers/per-connection.js';
import { checkLevel, type Room } from '../bench/servers/scenarios/idle.js';
import { buildCEchoClient } from '../bench/reference/build.js';

const holds = new Set<CHold>();
afterEach(async () => {
  await Promise.all([...holds].map((h) => h.close()));
  holds.clear();
  await closeFakeServers();
});

const RANGE = { low: 32768, high: 60999 }; // Linux's default ip_local_port_range

describe('loopback source addresses', () => {
  it('spreads a level over as many addresses as its ports need', () => {
    expect(connectionsPerSource(RANGE)).toBe(22585); // 80% of 28,232
    expect(sourcesFor(0, RANGE)).toEqual({ sources: 0 });
    expect(sourcesFor(300, RANGE)).toEqual({ sources: 1 });
    expect(sourcesFor(22585, RANGE)).toEqual({ sources: 1 });
    expect(sourcesFor(22586, RANGE)).toEqual({ sources: 2 });
    expect(sourcesFor(100_000, RANGE)).toEqual({ sources: 5 });
    expect(sourcesFor(1_000_000, RANGE)).toEqual({ sources: 45 });
    const refused = sourcesFor(10_000, { low: 60000, high: 60009 }); // 8 usable ports an address
    expect(refused).toEqual({ refusal: expect.stringMatching(/^10,000 connections need 1250 source addresses of 8 ports each \(ip_local_port_range 60000-60009\); the load generator has 253$/) });
    expect(MAX_SOURCES).toBe(253);
  });

  it("names connection i's address as the C client binds it", () => {
    expect([0, 1, 2, 3, 4].map((i) => sourceAddress(i, 2))).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3', '127.0.0.2']);
    expect(sourceAddress(252, 253)).toBe('127.0.0.254');
  });
});

describe("the kernel's files", () => {
  it('reads the TCP line of /proc/net/sockstat', () => {
    const text = 'sockets: used 200012\nTCP: inuse 200001 orphan 0 tw 456 alloc 200003 mem 171\nUDP: inuse 0 mem 0\n';
    expect(parseSockstat(text)).toEqual({ tcpInUse: 200001, tcpMemPages: 171 });
    expect(parseSockstat('sockets: used 1\n')).toBeUndefined();
  });

  it("adds up the live objects of a socket's slab caches, and only those", () => {
    const text = [
      'slabinfo - version: 2.1',
      '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>',
      'TCPv6                 13     26   2496   13    8 : tunables    0    0    0 : slabdata      2      2      0',
      'TCP                  104    156   2368   13    8 : tunables    0    0    0 : slabdata     12     12      0',
      'sock_inode_cache     194    266    832   19    4 : tunables    0    0    0 : slabdata     14     14      0',
      'eventpoll_epi        571    640    128   32    1 : tunables    0    0    0 : slabdata     20     20      0',
    ].join('\n');
    expect(parseSlabinfo(text)).toEqual({ TCP: 104 * 2368, sock_inode_cache: 194 * 832, eventpoll_epi: 571 * 128 });
  });
});

const sample = (tcpInUse: number, tcpMemPages: number, slabBytes: number | undefined, conntrack?: number): KernelSample => ({
  sockstat: { tcpInUse, tcpMemPages },
  slabBytes,
  conntrack: conntrack === undefined ? undefined : { count: conntrack, max: 262144 },
});

describe('what one idle connection costs', () => {
  it('divides the growth of the server and of the kernel by the connections held', () => {
    const cost = perConnection({
      n: 100_000,
      freshRssBytes: 50_000_000,
      rssBytes: 160_000_000,
      before: sample(10, 100, 1_000_000, 5),
      during: sample(200_010, 102, 901_000_000, 5),
      pageSize: 4096,
    });
    expect(cost).toEqual({
      rssPerConnection: 1100,
      kernelSlabBytes: 900_000_000,
      kernelBufferBytes: 8192,
      kernelPerConnection: (900_000_000 + 8192) / 100_000,
      socketsPerConnection: 2,
      conntrackPerConnection: 0,
    });
  });

  it('says null, not 0, where a figure was unreadable or nothing was held', () => {
    const unreadable = perConnection({ n: 1000, freshRssBytes: null, rssBytes: 1, before: sample(0, 0, undefined), during: sample(2000, 0, undefined), pageSize: 4096 });
    expect(unreadable.rssPerConnection).toBeNull();
    expect(unreadable.kernelPerConnection).toBeNull();
    expect(unreadable.conntrackPerConnection).toBeNull();
    expect(unreadable.socketsPerConnection).toBe(2);
    const none = perConnection({ n: 0, freshRssBytes: 1, rssBytes: 1, before: sample(0, 0, 5), during: sample(0, 0, 5), pageSize: 4096 });
    expect([none.rssPerConnection, none.kernelPerConnection]).toEqual([null, null]);
  });
});

describe('a million connections on paper', () => {
  const machine = { memTotalBytes: 24 * 1024 ** 3, nrOpen: 1_048_576, fileMax: 2_466_255, conntrackMax: 262_144 };
  const server = { label: 'a loop', held: 100_000, rssPerConnection: 1100, kernelPerConnection: 9000, conntrackPerConnection: 0, cpuUsAtZero: 8, cpuUsAtHeld: 8 };

  it('weighs memory, descriptors, conntrack and CPU, tightest first', () => {
    const outlook = millionOutlook(server, machine);
    expect(outlook.needs.map((n) => n.resource).slice(0, 2)).toEqual(['descriptors', 'memory']);
    expect(new Set(outlook.needs.map((n) => n.resource))).toEqual(new Set(['descriptors', 'memory', 'cpu', 'conntrack']));
    const byResource = Object.fromEntries(outlook.needs.map((n) => [n.resource, n]));
    expect(byResource.memory!.need).toBe(1e6 * 10_100);
    expect(byResource.descriptors).toMatchObject({ need: 1e6, limit: 1_048_576 }); // one process's 1M against fs.nr_open, tighter than 2M against fs.file-max
    expect(byResource.cpu!.need).toBe(0); // flat: the idle connections add nothing to a busy round trip
    expect(CPU_BUDGET_US).toBeCloseTo(60, 6);
  });

  it('carries the CPU per busy round trip on to a million, and names what runs out first', () => {
    // 4 µs at 0, 604 µs at 10,000 idle: 0.06 µs added per idle connection, 60,000 µs by a million.
    const poll = millionOutlook({ ...server, held: 10_000, cpuUsAtZero: 4, cpuUsAtHeld: 604 }, machine);
    expect(poll.needs[0]).toMatchObject({ resource: 'cpu', need: 60_000 });
    expect(poll.needs[0]!.share).toBeGreaterThan(1);
    // Tracked loopback connections: one entry each, four times nf_conntrack_max.
    const tracked = millionOutlook({ ...server, conntrackPerConnection: 1 }, machine);
    expect(tracked.needs[0]).toMatchObject({ resource: 'conntrack', need: 1e6, limit: 262_144 });
  });
});

describe('the checks before a level', () => {
  const room: Room = {
    fdLimit: 100_257,
    serverFdLimit: 100_257,
    fileMax: 2_466_255,
    filesOpen: 1000,
    memAvailableBytes: 20 * 1024 ** 3,
    bytesPerConnection: 64 * 1024,
    conntrack: { count: 0, max: 262_144 },
    conntrackPerConnection: 1,
    portRange: RANGE,
  };

  it('lets a level through with the source addresses it needs', () => {
    expect(checkLevel(100_000, room)).toEqual({ sources: 5 });
    expect(checkLevel(0, { ...room, portRange: undefined })).toEqual({ sources: 0 });
  });

  it('refuses with one line: descriptors, files, conntrack, memory, ports', () => {
    const refusal = (n: number, change: Partial<Room>) => {
      const result = checkLevel(n, { ...room, ...change });
      return 'refusal' in result ? result.refusal : undefined;
    };
    expect(refusal(100_000, { fdLimit: 20_000 })).toBe('the open-file limit is 20,000 (raised with prlimit as far as allowed), too few for 100,000 connections');
    expect(refusal(100_000, { fdLimit: 20_000, fdLimitRefused: 'prlimit: failed to set the NOFILE resource limit: Operation not permitted' })).toBe(
      'the open-file limit is 20,000 (prlimit: failed to set the NOFILE resource limit: Operation not permitted; raising a hard limit needs CAP_SYS_RESOURCE), too few for 100,000 connections',
    );
    expect(refusal(100_000, { serverFdLimit: 65_536 })).toBe("the server's open-file limit is 65,536, too few for 100,000 connections");
    expect(refusal(100_000, { fileMax: 200_000 })).toMatch(/^200,000 more open files \(both ends\) would pass 90% of fs.file-max 200,000/);
    expect(refusal(100_000, { conntrack: { count: 200_000, max: 262_144 } })).toMatch(/^100,000 conntrack entries would pass 90% of nf_conntrack_max 262,144 with 200,000 in use$/);
    expect(refusal(100_000, { conntrack: { count: 200_000, max: 262_144 }, conntrackPerConnection: 0.01 })).toBeUndefined();
    expect(refusal(100_000, { memAvailableBytes: 8 * 1024 ** 3 })).toBe('100,000 connections at 64.0 KiB each would take 6.1 GiB, over 50% of the 8.0 GiB available');
    expect(refusal(100_000, { portRange: undefined })).toMatch(/ip_local_port_range cannot be read/);
  });
});

describe('holding idle connections from several source addresses (a real run)', () => {
  it('builds', () => expect(buildCEchoClient()).toBeUndefined());

  it('holds 300 connections over 127.0.0.2 and 127.0.0.3, each echoed once, and lets every one go', async () => {
    const from = new Map<string, number>();
    let open = 0;
    let bytes = 0;
    const port = await testServer((socket) => {
      open++;
      from.set(socket.remoteAddress!, (from.get(socket.remoteAddress!) ?? 0) + 1);
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.on('close', () => open--);
      socket.pipe(socket);
    });
    const hold = await holdCEchoConnections({ port, connections: 300, sources: 2, stallSeconds: 10, maxSeconds: 60 });
    holds.add(hold);
    expect(hold.report).toMatchObject({ mode: 'hold', connections: 300, sources: 2, opened: 300, connected: 300, answered: 300, openEnd: 'answered' });
    expect(hold.report.errors.total).toBe(0);
    expect(Object.fromEntries(from)).toEqual({ '127.0.0.2': 150, '127.0.0.3': 150 });
    expect(bytes).toBe(300 * 8); // one 8-byte probe each, then idle
    await hold.close();
    holds.delete(hold);
    // Every connection reset by the holder; the server sees them all close.
    await expect.poll(() => open, { timeout: 20_000, interval: 50 }).toBe(0);
  });

  it('says how far it got against a server that stops accepting, and never calls that held', async () => {
    let accepted = 0;
    const port = await testServer((socket) => {
      // A cap, as a process-per-connection lab has. It reads the probe before it closes: a close
      // with unread bytes would be a reset (kind 'socket') instead of the FIN this test expects.
      if (++accepted > 50) return void socket.once('data', () => socket.destroy());
      socket.pipe(socket);
    });
    const hold = await holdCEchoConnections({ port, connections: 200, sources: 2, stallSeconds: 2, maxSeconds: 60 });
    holds.add(hold);
    expect(hold.report.answered).toBe(50);
    expect(hold.report.errors.total).toBe(150);
    // Closed by the server with the probe's echo owed.
    expect(hold.report.firstErrors[0]?.kind).toBe('missing');
  });

  it('runs the busy client over source addresses too, and refuses them for a host outside 127.0.0.0/8', async () => {
    const seen = new Set<string>();
    const port = await testServer((socket) => {
      seen.add(socket.remoteAddress!);
      socket.pipe(socket);
    });
    const result = await runCEchoClient({ port, connections: 4, size: 64, warmupSeconds: 0, seconds: 30, roundTripsPerConnection: 10, sources: 2 });
    expect(result).toMatchObject({ sources: 2, opened: 4, connected: 4, roundTrips: 40 });
    expect([...seen].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    await expect(runCEchoClient({ host: '10.0.0.1', port, connections: 1, size: 64, warmupSeconds: 0, seconds: 1, sources: 2 })).rejects.toThrow(
      /status 2: c-echo-client: --sources binds to 127.0.0.2 and up, so --host must be in 127.0.0.0\/8, got 10.0.0.1/,
    );
  });

  it('checks the hold report against what was asked', () => {
    const good = { tool: 'c-echo-client', version: 3, mode: 'hold', host: '127.0.0.1', port: 1, connections: 10, size: 8, sources: 1, opened: 10, connected: 10, answered: 9, openS: 0.1, openEnd: 'stalled', errors: { connect: 0, socket: 1, corrupt: 0, extra: 0, missing: 0, total: 1 }, firstErrors: [] };
    expect(parseHold(JSON.stringify(good), { connections: 10, sources: 1 }).answered).toBe(9);
    expect(() => parseHold(JSON.stringify({ ...good, answered: 11 }), { connections: 10, sources: 1 })).toThrow(/answered 11 ≤ connected 10/);
    expect(() => parseHold(JSON.stringify(good), { connections: 10, sources: 2 })).toThrow(/asked 10 over 2/);
    expect(() => parseHold(JSON.stringify({ ...good, errors: { ...good.errors, total: 0 } }), { connections: 10, sources: 1 })).toThrow(/errors.total/);
  });
});
