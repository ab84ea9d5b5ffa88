/**
 * The live view of a port (`make watch`): its screen is a pure function of /proc samples, checked
 * here from samples written by hand, and the whole program is run once against a real serial lab
 * holding one client with two waiting in the accept queue and one whose SYN was dropped.
 */

import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot, startLab, stopAllLabs } from '../harness/launch.js';
import { decodeAddress } from '../harness/sockets.js';
import { advance, renderScreen, ssStateName, type PortSample, type SocketRow } from '../tools/watch/view.js';
import { LABS } from '../labs/index.js';
import { closeAllClients, connect } from './helpers/tcp.js';
import { eventually } from './helpers/util.js';

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});

const server = (remote: string, state: string, inode: number, sendQ = 0, recvQ = 0): SocketRow => ({
  side: 'server',
  local: '127.0.0.1:8080',
  remote,
  state,
  sendQ,
  recvQ,
  inode,
});

/** A serial server at backlog 1: one client served, two queued (backlog + 1), one SYN dropped. */
function serialSample(atMs: number, overflows: number): PortSample {
  return {
    atMs,
    host: '*',
    port: 8080,
    listeners: [{ local: '127.0.0.1:8080', acceptQueue: 2, backlog: 1, inode: 1000 }],
    sockets: [
      server('127.0.0.1:40001', 'ESTABLISHED', 1001),
      server('127.0.0.1:40002', 'ESTABLISHED', 0, 0, 6),
      server('127.0.0.1:40003', 'ESTABLISHED', 0),
      { side: 'client', local: '127.0.0.1:40004', remote: '127.0.0.1:8080', state: 'SYN_SENT', sendQ: 0, recvQ: 0, inode: 2004 },
      // The clients' own ends of the established connections: not rows of their own.
      { side: 'client', local: '127.0.0.1:40001', remote: '127.0.0.1:8080', state: 'ESTABLISHED', sendQ: 0, recvQ: 0, inode: 2001 },
    ],
    counters: { listenOverflows: overflows, listenDrops: overflows },
    processes: [{ pid: 4242, ppid: 1, command: 'node dist/labs/01-serial/main.js', threads: 11, cpuMs: 500 + atMs / 100, rssBytes: 60 * 1024 * 1024 }],
  };
}

describe('the screen, from samples', () => {
  it('shows the accept queue against its backlog, where each connection waits and for how long, and the drops since start', () => {
    let state = advance(undefined, serialSample(0, 7));
    state = advance(state, serialSample(2000, 9));
    const screen = renderScreen(state, { width: 120 });
    const lines = screen.split('\n');
    // The address the server bound (loopback only), not "*:8080"; states spelled as ss spells them.
    expect(lines[0]).toBe('watching 127.0.0.1:8080 for 2 s   (q or Ctrl-C to quit)');
    expect(lines).toContain('  127.0.0.1:8080                      2 / 1');
    expect(lines).toContain('  since the view started: ListenOverflows +2, ListenDrops +2 (machine-wide)');
    expect(lines).toContain('connections: syn dropped 1 · half-open 0 · accept queue 2 · served 1 · closing 0');
    expect(lines).toContain('  syn dropped   127.0.0.1:40004        SYN-SENT           0 B       0 B    2.0 s');
    expect(lines).toContain('  accept queue  127.0.0.1:40002        ESTAB              0 B       6 B    2.0 s');
    expect(lines).toContain('  accept queue  127.0.0.1:40003        ESTAB              0 B       0 B    2.0 s');
    expect(lines).toContain('  served        127.0.0.1:40001        ESTAB              0 B       0 B    2.0 s');
    // 20 ms of CPU over 2 s of samples: 1%.
    expect(lines).toContain('     4242       1      11      1   60.0 MiB  node dist/labs/01-serial/main.js');
  });

  it('restarts the clock of a connection that moves to another place, and counts opens and closes per second', () => {
    const first = serialSample(0, 0);
    let state = advance(undefined, first);
    const accepted: PortSample = {
      ...first,
      atMs: 1000,
      listeners: [{ ...first.listeners[0]!, acceptQueue: 1 }],
      sockets: [server('127.0.0.1:40002', 'ESTABLISHED', 1002), server('127.0.0.1:40003', 'ESTABLISHED', 0), server('127.0.0.1:40001', 'TIME_WAIT', 0)],
    };
    state = advance(state, accepted);
    const lines = renderScreen(state, { width: 120 }).split('\n');
    expect(lines).toContain('  served        127.0.0.1:40002        ESTAB              0 B       0 B     0 ms');
    expect(lines).toContain('  accept queue  127.0.0.1:40003        ESTAB              0 B       0 B    1.0 s');
    expect(lines).toContain('  closing       127.0.0.1:40001        TIME-WAIT          0 B       0 B     0 ms');
    // 40001 left the served set (TIME_WAIT does not count as open); nothing new arrived.
    expect(lines).toContain('  opened 0.0/s, closed 1.0/s (from /proc/net/tcp, TIME-WAIT included)');
  });

  it('counts connections opened and closed between two redraws from the TIME_WAIT they leave (issue 26, item 5)', () => {
    const idle: PortSample = { ...serialSample(0, 0), sockets: [] };
    let state = advance(undefined, idle);
    // 12 one-line connections, each opened and closed within the second: only the clients' TIME_WAIT is left.
    const quick = Array.from({ length: 12 }, (_, i): SocketRow => ({ side: 'client', local: `127.0.0.1:${41000 + i}`, remote: '127.0.0.1:8080', state: 'TIME_WAIT', sendQ: 0, recvQ: 0, inode: 0 }));
    state = advance(state, { ...idle, atMs: 1000, sockets: quick });
    expect(renderScreen(state, { width: 120 })).toContain('  opened 12.0/s, closed 12.0/s');
    // The same TIME_WAIT sockets a second later are not counted again; a reset (gone without one) is a close.
    state = advance(state, { ...idle, atMs: 2000, sockets: [...quick, server('127.0.0.1:42000', 'ESTABLISHED', 7)] });
    expect(renderScreen(state, { width: 120 })).toContain('  opened 1.0/s, closed 0.0/s');
    state = advance(state, { ...idle, atMs: 3000, sockets: quick });
    expect(renderScreen(state, { width: 120 })).toContain('  opened 0.0/s, closed 1.0/s');
  });

  it('spells FIN_WAIT2 as ss does, FIN-WAIT-2 (issue 26, item 9)', () => {
    expect(ssStateName('FIN_WAIT2')).toBe('FIN-WAIT-2');
    expect(ssStateName('FIN_WAIT1')).toBe('FIN-WAIT-1');
    expect(ssStateName('TIME_WAIT')).toBe('TIME-WAIT');
    expect(ssStateName('ESTABLISHED')).toBe('ESTAB');
  });

  it('says clearly when nothing listens on the port', () => {
    const empty: PortSample = { atMs: 0, host: '*', port: 9, listeners: [], sockets: [], counters: { listenOverflows: 0, listenDrops: 0 }, processes: [] };
    const screen = renderScreen(advance(undefined, empty), { width: 120 });
    expect(screen).toContain('nothing listens on port 9');
    expect(screen.split('\n')[0]).toBe('watching port 9 for 0 s   (q or Ctrl-C to quit)');
  });

  it('decodes the addresses of /proc/net/tcp and tcp6', () => {
    expect(decodeAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('::ffff:127.0.0.1');
    expect(decodeAddress('00000000000000000000000001000000')).toBe('[::1]');
  });
});

/** Runs the view for one frame and returns it. */
function oneFrame(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist/tools/watch/main.js'), '--port', String(port), '--frames', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`watch exited ${code}: ${out}`));
    });
  });
}

describe('the view of real short connections', () => {
  it('12 one-line connections between two frames read as opened and closed, not 0.0/s', { timeout: 60_000 }, async () => {
    const lab = await startLab('04-evented', ['--quiet']);
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist/tools/watch/main.js'), '--port', String(lab.port), '--frames', '2', '--interval', '3000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await eventually(() => out.includes('opened') || undefined, 20_000, 'the first frame');
      // As `nc -N`: connect, one line, FIN; the echo comes back and the server closes.
      for (let i = 0; i < 12; i++) {
        const client = await connect(lab.port);
        client.socket.end('hello\n');
        await client.waitForBytes(6);
        await new Promise((resolve) => client.socket.once('close', resolve));
      }
      expect(await exited).toBe(0);
      const rates = [...out.matchAll(/opened ([\d.]+)\/s, closed ([\d.]+)\/s/g)].at(-1)!;
      expect(Number(rates[1]), out).toBeGreaterThan(0);
      expect(rates[2]).toBe(rates[1]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

// Generated for every lab whose only queue is the kernel's (the serial model), none skipped.
for (const serial of LABS.filter((lab) => lab.traits.kernelQueueOnly)) {
  describe(`the view of a real lab: ${serial.id}`, () => {
    it('shows a serial lab at backlog 1 holding one client, two in the accept queue and one SYN dropped', async () => {
      const lab = await startLab(serial.id, ['--quiet', '--backlog', '1']);
      const held = await connect(lab.port);
      held.socket.write('x');
      await held.waitForBytes(1);
      await connect(lab.port);
      await connect(lab.port);
      // The fourth handshake cannot complete: its SYN is dropped while the queue is full.
      const dropped = net.connect(lab.port, '127.0.0.1');
      dropped.on('error', () => {});
      try {
        // Poll frames until the kernel shows the fourth client's SYN dropped (bounded).
        const deadline = Date.now() + 30_000;
        let frame = await oneFrame(lab.port);
        while (!frame.includes('connections: syn dropped 1 · half-open 0 · accept queue 2 · served 1') && Date.now() < deadline) {
          frame = await oneFrame(lab.port);
        }
        expect(frame).toContain('connections: syn dropped 1 · half-open 0 · accept queue 2 · served 1');
        expect(frame).toMatch(new RegExp(`127\\.0\\.0\\.1:${lab.port} +2 / 1`));
        expect(frame).toMatch(new RegExp(`^watching 127\\.0\\.0\\.1:${lab.port} for `));
        expect(frame).toMatch(/^ {2}syn dropped +127\.0\.0\.1:\d+ +SYN-SENT /m);
        expect(frame).toContain(`${lab.pid} `);
      } finally {
        dropped.destroy();
      }
    });
  });
}
