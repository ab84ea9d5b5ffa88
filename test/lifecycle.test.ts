/**
 * `make lifecycle` (tools/lifecycle/): the /proc/net/tcp parser on lines the kernel printed, the
 * walk as a program (`--auto`, its transcript parsed step by step), its command line, and the one
 * kernel rule its last paragraph states beyond what the walk itself shows.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as calls from '../tools/lifecycle/calls.js';
import { until } from '../tools/lifecycle/observe.js';
import { acceptQueue, linesForPort, parseLine, parseTable } from '../tools/lifecycle/tcp-table.js';
import { repoRoot } from '../harness/launch.js';

const ENTRY = path.join(repoRoot, 'dist', 'tools', 'lifecycle', 'main.js');

// Lines as the kernel printed them during a walk (server port 0x8C7F = 35967, client 0xBD4E = 48462).
const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const LISTEN = '   4: 0100007F:8C7F 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 19873265 1 0000000000000000 100 0 0 10 0';
const QUEUED = '  97: 0100007F:8C7F 0100007F:BD4E 01 00000000:00000006 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1';
const CLIENT = ' 277: 0100007F:BD4E 0100007F:8C7F 01 00000000:00000000 00:00000000 00000000     0        0 19960149 1 0000000000000000 20 4 30 10 -1';
const TIME_WAIT = ' 275: 0100007F:BD4E 0100007F:8C7F 06 00000000:00000000 03:0000176E 00000000     0        0 0 3 0000000000000000';
const OTHER = '   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 49 1 0000000000000000 100 0 0 10 0';

describe('/proc/net/tcp lines', () => {
  it('decodes addresses, state names, queues, inode, and keeps the raw columns up to the inode', () => {
    expect(parseLine(HEADER)).toBeUndefined();
    expect(parseLine(QUEUED)).toEqual({
      raw: '  97: 0100007F:8C7F 0100007F:BD4E 01 00000000:00000006 00:00000000 00000000     0        0 0',
      local: { address: '127.0.0.1', port: 35967 },
      remote: { address: '127.0.0.1', port: 48462 },
      state: 'ESTABLISHED',
      txQueue: 0,
      rxQueue: 6,
      timer: undefined,
      inode: 0,
    });
    expect(parseLine(LISTEN)).toMatchObject({ state: 'LISTEN', rxQueue: 1, inode: 19873265, remote: { address: '0.0.0.0', port: 0 } });
  });

  it('reads the time left in TIME_WAIT from the timer columns, in 1/100 s', () => {
    expect(parseLine(TIME_WAIT)).toMatchObject({ state: 'TIME_WAIT', inode: 0, timer: { name: 'timewait', secondsLeft: 59.98 } });
  });

  it('names every state the kernel defines, and shows an unknown number as it is', () => {
    const states = Array.from({ length: 12 }, (_, i) =>
      parseLine(LISTEN.replace(' 0A ', ` 0${(i + 1).toString(16).toUpperCase()} `))!.state,
    );
    expect(states).toEqual(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV']);
    expect(parseLine(LISTEN.replace(' 0A ', ' 0F '))!.state).toBe('st 0x0F');
  });

  it('gives each line for a port its role, and the accept queue from the LISTEN line', () => {
    const table = parseTable([HEADER, OTHER, LISTEN, QUEUED, CLIENT, ''].join('\n'));
    expect(linesForPort(table, 35967).map((line) => [line.role, line.clientPort])).toEqual([
      ['listener', undefined],
      ['server end', 48462],
      ['client end', 48462],
    ]);
    expect(acceptQueue(table, 35967)).toBe(1);
    expect(acceptQueue(table, 1)).toBeUndefined();
  });
});

// --- The walk as a program.

let children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runWalk(args: string[], timeoutMs = 50_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => reject(new Error(`the walk did not finish in ${timeoutMs} ms:\n${stdout}\n${stderr}`)), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Row {
  readonly role: string;
  readonly connection: number | undefined;
  readonly state: string;
  readonly facts: string;
}

interface StepText {
  readonly who: string;
  readonly name: string;
  readonly text: string;
  readonly rows: Row[];
  /** The connection-1 end with this role, if the step's table has it. */
  row(role: string, connection?: number): Row | undefined;
}

const STEP_HEADER = /^── Step (\d+)\/(\d+) · (.+?) · (\S+) ──$/gm;
const ROW = /^ {4}(listener|server end|client end)(?:, connection (\d+))? +\S+ ↔ \S+ +([A-Z_0-9]+) +(.*)$/gm;

function parseSteps(transcript: string): StepText[] {
  const headers = [...transcript.matchAll(STEP_HEADER)];
  return headers.map((header, i) => {
    const text = transcript.slice(header.index, headers[i + 1]?.index ?? transcript.length);
    const rows = [...text.matchAll(ROW)].map((m) => ({ role: m[1]!, connection: m[2] ? Number(m[2]) : undefined, state: m[3]!, facts: m[4]! }));
    return {
      who: header[3]!,
      name: header[4]!,
      text,
      rows,
      row: (role: string, connection = 1) => rows.find((r) => r.role === role && (role === 'listener' || r.connection === connection)),
    };
  });
}

describe('make lifecycle --auto', () => {
  it('walks one connection through LISTEN, the accept queue, ESTABLISHED, CLOSE_WAIT + FIN_WAIT2 and TIME_WAIT, then both pitfalls', async () => {
    const run = await runWalk(['--auto']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const steps = parseSteps(run.stdout);
    expect(steps.length).toBe(29);

    // Each expectation is found in a step after the previous one: the states come in this order.
    let at = -1;
    const next = (what: string, matches: (step: StepText) => boolean): StepText => {
      const index = steps.findIndex((step, i) => i > at && matches(step));
      expect(index, what).toBeGreaterThan(at);
      at = index;
      return steps[index]!;
    };

    const socket = next('the server socket', (s) => s.who === 'server' && s.name === 'socket');
    expect(socket.text).toMatch(/fd = socket\(AF_INET, SOCK_STREAM, 0\) {2}→ \d+/);
    expect(socket.rows).toEqual([]);
    expect(socket.text).toMatch(/no line for socket:\[\d+\]/);

    const bind = next('bind', (s) => s.name === 'bind');
    expect(bind.text).toMatch(/bind\(\d+, \(struct sockaddr \*\)&addr, sizeof addr\) {2}→ 0 {3}addr: 127\.0\.0\.1, port 0/);
    const port = Number(/getsockname\(.*→ 0 {3}addr: 127\.0\.0\.1, port (\d+)/.exec(bind.text)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(bind.rows).toEqual([]);

    const listen = next('LISTEN', (s) => s.row('listener')?.state === 'LISTEN');
    expect(listen.name).toBe('listen');
    expect(listen.text).toContain('Accept queue: 0 waiting');

    const queued = next('ESTABLISHED, the server end in the accept queue', (s) => s.row('server end')?.state === 'ESTABLISHED');
    expect(queued.name).toBe('connect');
    expect(queued.row('server end')!.facts).toContain('inode 0: in the accept queue');
    expect(queued.row('client end')!.state).toBe('ESTABLISHED');
    expect(queued.text).toContain('Accept queue: 1 waiting');

    const accepted = next('ESTABLISHED and accepted', (s) => /inode \d+ = fd \d+/.test(s.row('server end')?.facts ?? ''));
    expect(accepted.name).toBe('accept');
    expect(accepted.row('server end')!.state).toBe('ESTABLISHED');
    expect(accepted.text).toContain('Accept queue: 0 waiting');

    const unread = next('bytes waiting at the server end', (s) => /rx_queue 6/.test(s.row('server end')?.facts ?? ''));
    expect(unread.who).toBe('client');
    expect(unread.text).toContain('write(');

    const halfClosed = next('CLOSE_WAIT + FIN_WAIT2', (s) => s.row('server end')?.state === 'CLOSE_WAIT');
    expect([halfClosed.who, halfClosed.name]).toEqual(['client', 'close']);
    expect(halfClosed.row('client end')!.state).toBe('FIN_WAIT2');

    const timeWait = next('TIME_WAIT', (s) => s.row('client end')?.state === 'TIME_WAIT');
    expect([timeWait.who, timeWait.name]).toEqual(['server', 'close']);
    expect(timeWait.row('server end')).toBeUndefined();
    const left = Number(/timewait timer: ([\d.]+) s left/.exec(timeWait.row('client end')!.facts)?.[1]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(60);

    // Pitfall 1: the peer has gone.
    const reset = next('the first write after the peer closed', (s) => s.who === 'client' && s.name === 'write' && s.text.includes('are you there'));
    expect(reset.text).toMatch(/write\(\d+, "are you there\?\\n", 15\) {2}→ 15/);
    expect(reset.row('client end', 2)).toBeUndefined();
    const ignored = next('EPIPE in a child that ignores SIGPIPE', (s) => s.who === 'child process' && s.name === 'write');
    expect(ignored.text).toContain('child: write(3, "still there?\\n", 13)  → -1, errno EPIPE (Broken pipe)');
    expect(ignored.text).toContain('child: exited with status 0');
    const killed = next('death by SIGPIPE in a child that does not', (s) => s.who === 'child process' && s.name === 'write');
    expect(killed.text).toContain('child: signal(SIGPIPE, SIG_DFL)  → SIG_IGN');
    expect(killed.text).toContain('child: killed by signal SIGPIPE');
    expect(killed.text).not.toContain('→ -1, errno EPIPE');

    // Pitfall 2: the server's own end in TIME_WAIT holds its port.
    const serverTimeWait = next('the server end in TIME_WAIT', (s) => s.row('server end', 3)?.state === 'TIME_WAIT');
    expect(serverTimeWait.name).toBe('close');
    const stopped = next('the listener closed', (s) => s.text.includes(`Accept queue: none (nothing listens on port ${port})`));
    expect(stopped.row('server end', 3)?.state).toBe('TIME_WAIT');
    const refused = next('bind without SO_REUSEADDR', (s) => s.who === 'child process' && s.name === 'bind');
    expect(refused.text).toMatch(/child: bind\(\d+, \(struct sockaddr \*\)&addr, sizeof addr\) {2}→ -1, errno EADDRINUSE \(Address already in use\)/);
    expect(refused.text).not.toContain('SO_REUSEADDR, &one');
    const restarted = next('bind with SO_REUSEADDR', (s) => s.who === 'child process' && s.name === 'bind');
    expect(restarted.text).toMatch(/child: setsockopt\(\d+, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one\) {2}→ 0/);
    expect(restarted.text).toMatch(new RegExp(`child: bind\\(\\d+, .*\\) {2}→ 0 {3}addr: 127\\.0\\.0\\.1, port ${port}`));
    expect(restarted.text).toMatch(/child: listen\(\d+, 16\) {2}→ 0/);
    expect(restarted.text).toContain('child: exited with status 0');
    expect(restarted.row('server end', 3)?.state).toBe('TIME_WAIT');

    // Every descriptor the walk opened is closed at the end.
    expect(steps.at(-1)!.text).toMatch(/Descriptors \(\/proc\/self\/fd\):\n {4}no sockets/);
  });
});

describe('lifecycle command line', () => {
  it('--help describes the walk and its flags', async () => {
    const run = await runWalk(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--auto');
    expect(run.stdout).toContain('--port');
  });

  it.each([
    [['--port', '70000'], /--port must be a whole number from 0 to 65535/],
    [['--port', 'x'], /--port/],
    [['--frobnicate'], /^lifecycle: unknown flag --frobnicate \(--help lists every flag\)$/m],
  ])('%j: one line on stderr, exit status 2', async (args, message) => {
    const run = await runWalk(args);
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(message);
  });

  it('a --port someone listens on: one line on stderr, exit status 2', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const run = await runWalk(['--auto', '--port', String((server.address() as net.AddressInfo).port)]);
      expect(run.code).toBe(2);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(/^lifecycle: bind 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

// --- The rule behind part 3's last paragraph.

describe('SO_REUSEADDR and TIME_WAIT', () => {
  const open: number[] = [];
  afterEach(() => {
    for (const fd of open.splice(0)) calls.close(fd);
  });
  const opened = (call: calls.Call) => {
    expect(call.error, call.text).toBeUndefined();
    open.push(call.result);
    return call.result;
  };
  const closed = (fd: number) => {
    open.splice(open.indexOf(fd), 1);
    expect(calls.close(fd).result).toBe(0);
  };

  it('does not help a restart when the old listener did not set it: the TIME_WAIT socket inherits the option', async () => {
    const listener = opened(calls.socket()); // no SO_REUSEADDR: the old server forgot it
    expect(calls.bind(listener, 0).result).toBe(0);
    const { port } = calls.localAddress(listener);
    expect(calls.listen(listener, 4).result).toBe(0);
    const client = opened(calls.socket());
    expect(calls.connect(client, port).result).toBe(0);
    const server = opened(calls.accept(listener));
    const serverEnd = (state: string) => (view: { lines: { role: string; state: string }[] }) =>
      view.lines.some((line) => line.role === 'server end' && line.state === state);

    closed(server); // the server closes first, so its end, on its port, goes to TIME_WAIT
    expect(await until(port, serverEnd('FIN_WAIT2'), 5_000)).toBe(true);
    closed(client);
    expect(await until(port, serverEnd('TIME_WAIT'), 5_000)).toBe(true);
    closed(listener);

    const restart = opened(calls.socket());
    expect(calls.reuseAddress(restart).result).toBe(0);
    expect(calls.bind(restart, port).error).toBe('EADDRINUSE');
  });
});
