/**
 * The walk: a TCP connection's life, one system call per step, with the kernel's view after each.
 *
 * This one process plays both the server and the client, on blocking sockets, so nothing happens
 * between two steps except what the kernel does by itself (and the walk waits for that, bounded,
 * before it looks). The steps, in three parts:
 *   1. One connection: socket, setsockopt, bind, listen; the client's socket and connect; accept;
 *      an echo both ways; the client closes, then the server: LISTEN, ESTABLISHED (first in the
 *      accept queue, then accepted), CLOSE_WAIT and FIN_WAIT2, TIME_WAIT.
 *   2. Pitfall: write() to a connection whose peer has gone: EPIPE, and SIGPIPE, which kills a
 *      process that has not ignored it. Shown in child processes, one of which dies.
 *   3. Pitfall: restarting a server while its old connection lingers in TIME_WAIT: bind() without
 *      SO_REUSEADDR fails with EADDRINUSE, with it succeeds. Shown in child processes, as a
 *      restarted server would be a new process.
 */

import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../shared/errors.js';
import { repoRoot } from '../../harness/launch.js';
import * as calls from './calls.js';
import { descriptors, look, until, type Descriptor, type View } from './observe.js';
import { showView, wrap } from './show.js';
import type { PortLine } from './tcp-table.js';

/**
 * listen()'s backlog: small enough to read at a glance in ss's Send-Q column, and more than the
 * one connection that ever waits in this walk's queue.
 */
export const BACKLOG = 16;

/**
 * The longest the walk waits for the kernel to reach a state it describes. On loopback it takes
 * microseconds to a few tens of milliseconds (a delayed ACK); the bound is for a machine under load.
 */
const SETTLE_TIMEOUT_MS = 5_000;

/** A child is a Node start-up and a few calls: a second or so even on a busy machine. */
const CHILD_TIMEOUT_MS = 20_000;

/** What the walk holds between steps. */
export interface Walk {
  readonly requestedPort: number;
  /** The server's port, once bind() has given it one. */
  port: number;
  listener: number;
  client: number;
  server: number;
  /** The connection being made (1, 2, 3: one per part). */
  connection: number;
  /** What each open descriptor is, for the observations. */
  readonly fds: Map<number, string>;
  /** Connection number by client port, learnt from /proc/net/tcp after each connect(). */
  readonly connections: Map<number, number>;
}

type Lines = Pick<View, 'lines' | 'acceptQueue'>;

export interface Outcome {
  /** The calls made, as C lines (a child's, with its ending). */
  readonly calls: string[];
  /** What happened, for the learner: one paragraph. */
  readonly what: string;
  /** The state the paragraph describes, which the kernel may reach a moment after the call. */
  readonly settle?: { readonly what: string; readonly done: (view: Lines) => boolean };
}

export interface Step {
  readonly part: number;
  readonly who: 'server' | 'client' | 'child process';
  readonly name: string;
  run(walk: Walk): Outcome | Promise<Outcome>;
}

export const PARTS: Record<number, { readonly title: string; readonly intro: string }> = {
  1: {
    title: 'one connection, from socket() to TIME_WAIT',
    intro:
      'This process plays both ends of one TCP connection, the server and the client, one system call at a ' +
      'time. The sockets are blocking, as in a C textbook, and nothing happens between two steps but what the ' +
      'kernel does by itself. After each call you see this process\'s descriptors, the lines of /proc/net/tcp ' +
      'for the server\'s port (raw, then decoded), the listening socket\'s accept queue, and what ss prints.',
  },
  2: {
    title: 'writing to a connection whose peer has gone',
    intro:
      'A write() to a connection the other end has closed fails with EPIPE, and the kernel also sends the ' +
      'writer SIGPIPE, whose default action is to end the process. A C server that does not ignore SIGPIPE ' +
      '(or pass MSG_NOSIGNAL) dies the first time a client hangs up at the wrong moment. Node sets SIGPIPE to ' +
      'SIG_IGN when it starts, so a Node process only sees the error; the last child of this part puts the C ' +
      'default back. The writes happen in child processes, so that the walk survives the one that dies.',
  },
  3: {
    title: 'restarting a server while its old connection is in TIME_WAIT',
    intro:
      'A server restarted right after it stopped may fail to bind its port: EADDRINUSE, "Address already in ' +
      'use", for about a minute. TIME_WAIT holds the port: the end that closes first waits there, and here it ' +
      'is the server\'s. (In part 1 the client closed first, so that TIME_WAIT is on the client\'s port.) ' +
      'The restarted servers are child processes, as a real restart would be a new process.',
  },
};

// --- Looking up the walk's own sockets in the table.

function inodeOf(fd: number): number {
  return Number(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? 0);
}

const connectionOf = (walk: Walk, line: PortLine) => (line.clientPort === undefined ? undefined : walk.connections.get(line.clientPort));
const end = (walk: Walk, view: Lines, role: PortLine['role'], connection = walk.connection) =>
  view.lines.find((line) => line.role === role && connectionOf(walk, line) === connection);
const inState = (walk: Walk, view: Lines, role: PortLine['role'], state: string, connection = walk.connection) =>
  end(walk, view, role, connection)?.state === state;

/**
 * Only the walk's own lines: its listener, and the ends of connections whose client port it
 * learned. On a busy machine other programs' connections can use the same port number at one
 * end (a client socket bound to it, or its TIME_WAIT), and they are not this walk's story.
 */
function ownLines<View extends Lines>(walk: Walk, view: View): View {
  return { ...view, lines: view.lines.filter((line) => line.role === 'listener' || connectionOf(walk, line) !== undefined) };
}

/** After connect(): the client's line is the one with its socket's inode; its local port names the connection. */
function learnClientPort(walk: Walk): (view: Lines) => boolean {
  const inode = inodeOf(walk.client);
  return (view) => {
    const line = view.lines.find((l) => l.role === 'client end' && l.inode === inode);
    if (line?.clientPort !== undefined) walk.connections.set(line.clientPort, walk.connection);
    return line !== undefined;
  };
}

function failed(call: calls.Call): never {
  throw new Error(`unexpected failure: ${call.text}`);
}

// --- The steps that every part's connection starts with.

function clientSocket(part: number): Step {
  return {
    part,
    who: 'client',
    name: 'socket',
    run(walk) {
      walk.connection = part;
      const call = calls.socket();
      if (call.result < 0) failed(call);
      walk.client = call.result;
      walk.fds.set(walk.client, `client socket, connection ${part}`);
      return {
        calls: [call.text],
        what:
          part === 1
            ? `The client starts the same way: a socket, fd ${walk.client}. This process plays both ends, so both ` +
              'sockets are in its descriptor table; in real life they would be in two processes, usually on two machines.'
            : `A new client socket for connection ${part}: fd ${walk.client}.`,
      };
    },
  };
}

function clientConnect(part: number): Step {
  return {
    part,
    who: 'client',
    name: 'connect',
    run(walk) {
      const call = calls.connect(walk.client, walk.port);
      if (call.result < 0) failed(call);
      const learnt = learnClientPort(walk);
      return {
        calls: [call.text],
        what:
          part === 1
            ? `connect() made the client's kernel send a SYN to 127.0.0.1:${walk.port}; the listening socket's kernel ` +
              "answered SYN-ACK, the client's answered ACK, and connect() returned. The kernel gave the client an " +
              'ephemeral port of its own. Two lines are new, one per end: the client end (local: the client port) and ' +
              'the server end (local: the server port), both ESTABLISHED. Nobody has called accept(): the kernel ' +
              'finished the handshake by itself and put the server end in the listening socket\'s accept queue. That ' +
              "is why the LISTEN line's rx_queue is 1, and why the server end's inode is 0: no process holds it, it " +
              'has no descriptor yet. The client cannot tell: for it the connection is open, and it could send.'
            : 'The handshake again, done by the kernels alone: both ends ESTABLISHED, the server end waiting in the accept queue.',
        settle: {
          what: 'the client end and the server end (inode 0, in the accept queue) ESTABLISHED',
          done: (view) => learnt(view) && inState(walk, view, 'client end', 'ESTABLISHED') && end(walk, view, 'server end')?.inode === 0 && view.acceptQueue === 1,
        },
      };
    },
  };
}

function serverAccept(part: number): Step {
  return {
    part,
    who: 'server',
    name: 'accept',
    run(walk) {
      const call = calls.accept(walk.listener);
      if (call.result < 0) failed(call);
      walk.server = call.result;
      walk.fds.set(walk.server, `server end, connection ${part}`);
      const inode = inodeOf(walk.server);
      return {
        calls: [call.text],
        what:
          part === 1
            ? `accept() took the first connection off the queue and gave it a descriptor, fd ${walk.server}: the ` +
              "LISTEN line's rx_queue is back to 0 and the server end's line now carries the inode of that socket. " +
              'The listening socket is unchanged and keeps listening; a server has one listening socket and one ' +
              "connected socket per client. `peer` tells the server who connected: the client's address and port."
            : `accept() gives the server end a descriptor, fd ${walk.server}.`,
        settle: { what: 'the server end held by the new descriptor', done: (view) => end(walk, view, 'server end')?.inode === inode },
      };
    },
  };
}

// --- Part 1: one connection.

const MESSAGE = 'hello\n';

const partOne: Step[] = [
  {
    part: 1,
    who: 'server',
    name: 'socket',
    run(walk) {
      const call = calls.socket();
      if (call.result < 0) failed(call);
      walk.listener = call.result;
      walk.fds.set(walk.listener, 'server socket (to listen on)');
      return {
        calls: [call.text],
        what:
          `The kernel made a TCP socket and gave this process the lowest free descriptor number, ${walk.listener} ` +
          "(Node's own descriptors take the ones below). /proc/self/fd shows it as socket:[inode]: the inode " +
          'names this socket everywhere else, /proc/net/tcp included. The socket has no address and no connection ' +
          'yet (its state is CLOSE), so no table lists it: /proc/net/tcp has no line for it and ss does not show it.',
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'setsockopt',
    run(walk) {
      const call = calls.reuseAddress(walk.listener);
      if (call.result < 0) failed(call);
      return {
        calls: [call.text],
        what:
          'Before binding, the server sets SO_REUSEADDR (with `int one = 1`), as nearly every server does. It lets ' +
          "a later bind() to the same port succeed while this socket's old connections linger in TIME_WAIT; " +
          "without it a restarted server can fail to bind for a minute. Part 3 shows both. Nothing visible " +
          'changes: an option is a flag inside the socket.',
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'bind',
    run(walk) {
      const call = calls.bind(walk.listener, walk.requestedPort);
      if (call.error === 'EADDRINUSE' || call.error === 'EACCES') {
        throw new UserError(`bind ${calls.HOST}:${walk.requestedPort}: ${call.error}; choose another --port, or 0 to let the kernel pick`);
      }
      if (call.result < 0) failed(call);
      const name = calls.localAddress(walk.listener);
      if (name.result < 0) failed(name);
      walk.port = name.port;
      walk.fds.set(walk.listener, 'listening socket');
      const picked =
        walk.requestedPort === 0
          ? `Port 0 asks the kernel to choose a free port, so the server asks getsockname() what it got: ${walk.port}.`
          : `The port was asked for explicitly (--port ${walk.port}); getsockname() confirms it.`;
      return {
        calls: [call.text, name.text],
        what:
          `bind() gave the socket its local address, 127.0.0.1 (loopback only: nothing outside this machine can ` +
          `reach it). ${picked} Still no line in /proc/net/tcp and nothing in ss: a bound socket is in the kernel's ` +
          `table of bound ports, which keeps anybody else from binding ${walk.port}, but in none of the tables that list ` +
          'connections. Its state is still CLOSE.',
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'listen',
    run(walk) {
      const call = calls.listen(walk.listener, BACKLOG);
      if (call.result < 0) failed(call);
      return {
        calls: [call.text],
        what:
          'listen() made the socket passive: it will never connect anywhere, it collects connections. Now it has a ' +
          `line: st 0A, LISTEN, local 127.0.0.1:${walk.port}, remote 0.0.0.0:0 (anyone). For a listening socket ` +
          "rx_queue is the accept queue's length: 0, nobody has connected. The backlog, " +
          `${BACKLOG}, caps that queue; /proc/net/tcp does not show it, ss does, as the Send-Q of the LISTEN line ` +
          "(its Recv-Q is the queue's current length).",
        settle: { what: 'a LISTEN line', done: (view) => view.acceptQueue !== undefined },
      };
    },
  },
  clientSocket(1),
  clientConnect(1),
  serverAccept(1),
  {
    part: 1,
    who: 'client',
    name: 'write',
    run(walk) {
      const call = calls.write(walk.client, MESSAGE);
      if (call.result !== MESSAGE.length) failed(call);
      return {
        calls: [call.text],
        what:
          `The client wrote ${MESSAGE.length} bytes. write() returns as soon as the kernel has copied them into the ` +
          "socket's send buffer; on loopback they arrive at once in the server end's receive buffer, and wait " +
          `there: the server end's rx_queue is ${MESSAGE.length}, bytes received and not yet read. The client end's ` +
          "tx_queue is 0 again once the server's kernel has acknowledged them, whether or not the server has read them.",
        settle: {
          what: `${MESSAGE.length} bytes waiting at the server end, acknowledged to the client`,
          done: (view) => end(walk, view, 'server end')?.rxQueue === MESSAGE.length && end(walk, view, 'client end')?.txQueue === 0,
        },
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'read',
    run(walk) {
      const call = calls.read(walk.server);
      if (call.data !== MESSAGE) failed(call);
      return {
        calls: [call.text],
        what:
          "read() copied the waiting bytes into the server's buffer, and the server end's rx_queue is 0 again. Had " +
          'nothing been waiting, this blocking read() would have put the process to sleep until something came.',
        settle: { what: 'nothing left to read at the server end', done: (view) => end(walk, view, 'server end')?.rxQueue === 0 },
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'write',
    run(walk) {
      const call = calls.write(walk.server, MESSAGE);
      if (call.result !== MESSAGE.length) failed(call);
      return {
        calls: [call.text],
        what: `The server echoes the bytes back; now they wait in the client end's receive buffer (rx_queue ${MESSAGE.length}).`,
        settle: {
          what: `${MESSAGE.length} bytes waiting at the client end, acknowledged to the server`,
          done: (view) => end(walk, view, 'client end')?.rxQueue === MESSAGE.length && end(walk, view, 'server end')?.txQueue === 0,
        },
      };
    },
  },
  {
    part: 1,
    who: 'client',
    name: 'read',
    run(walk) {
      const call = calls.read(walk.client);
      if (call.data !== MESSAGE) failed(call);
      return {
        calls: [call.text],
        what: 'The client reads its echo. Both receive queues are empty: this is an idle, open connection, as an open nc session is.',
        settle: { what: 'nothing left to read at the client end', done: (view) => end(walk, view, 'client end')?.rxQueue === 0 },
      };
    },
  },
  {
    part: 1,
    who: 'client',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.client);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.client);
      return {
        calls: [call.text],
        what:
          'The client is done and closes its socket. Its kernel sent a FIN ("I will send nothing more") and moved ' +
          'the client end to FIN_WAIT1; the server\'s kernel acknowledged the FIN and moved the server end to ' +
          'CLOSE_WAIT, where it waits for its own process to close; at that ACK the client end went on to ' +
          "FIN_WAIT2, waiting for the server's FIN. The client's descriptor is gone, so its line has inode 0: the " +
          'kernel finishes the connection alone, and a timer (net.ipv4.tcp_fin_timeout, 60 s) ends it if the server ' +
          'never closes; Linux keeps such an orphan as a light time-wait entry, hence the timewait timer. The ' +
          "server process has noticed nothing yet, but its end's rx_queue is 1: a FIN takes one sequence number, " +
          'and it waits to be read like a byte. Reading it is read() returning 0, end of file.',
        settle: {
          what: 'the server end in CLOSE_WAIT and the client end in FIN_WAIT2',
          done: (view) => inState(walk, view, 'server end', 'CLOSE_WAIT') && inState(walk, view, 'client end', 'FIN_WAIT2'),
        },
      };
    },
  },
  {
    part: 1,
    who: 'server',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.server);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.server);
      return {
        calls: [call.text],
        what:
          'The server closes its end too, as it would once read() returned 0. Its kernel sent its own FIN and waited ' +
          "in LAST_ACK for the client's acknowledgement, which on loopback comes at once; then the server end " +
          'left the table. The client end received the FIN and is in TIME_WAIT: the end that closed first stays ' +
          'there 60 s on Linux (twice a maximum segment lifetime, in TCP\'s terms), to resend its last ACK if it was ' +
          'lost and so that a stray late packet of this connection cannot be taken for part of a new one between ' +
          "the same two ports. The timer columns of its line count down the time left; ss -o shows the same timer.",
        settle: {
          what: 'the client end in TIME_WAIT and the server end gone',
          done: (view) => inState(walk, view, 'client end', 'TIME_WAIT') && end(walk, view, 'server end') === undefined,
        },
      };
    },
  },
];

// --- Part 2: write() after the peer has gone.

const NUDGE = 'are you there?\n';

/** The compiled child.js beside the compiled walk, or child.ts through tsx when the walk runs from source. */
function childCommand(): string[] {
  const here = fileURLToPath(import.meta.url);
  const extension = path.extname(here);
  const entry = path.join(path.dirname(here), `child${extension}`);
  return extension === '.ts' ? ['--import', 'tsx', entry] : [entry];
}

export interface ChildEnding {
  readonly lines: string[];
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Runs child.ts with `args` (and `fd` as its fd 3), to its end; its stdout lines and how it ended. */
export function runChild(args: string[], fd?: number): Promise<ChildEnding> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...childCommand(), ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe', fd ?? 'ignore'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0 && code !== null) reject(new Error(`child ${args.join(' ')} failed (status ${code}): ${stderr.trim()}`));
      else resolve({ lines: stdout.trimEnd().split('\n').filter(Boolean), code, signal });
    });
  });
}

function ending(child: ChildEnding, pid: string): string {
  return child.signal ? `${pid} killed by signal ${child.signal}` : `${pid} exited with status ${child.code}`;
}

async function childStep(args: string[], fd?: number): Promise<string[]> {
  const child = await runChild(args, fd);
  return [...child.lines.map((line) => `child: ${line}`), ending(child, 'child:')];
}

const partTwo: Step[] = [
  clientSocket(2),
  clientConnect(2),
  serverAccept(2),
  {
    part: 2,
    who: 'server',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.server);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.server);
      return {
        calls: [call.text],
        what:
          'This time the server hangs up first. Its end is in FIN_WAIT2 with inode 0: no process holds it, so ' +
          'nobody will ever read what arrives there. The client end is in CLOSE_WAIT. The client has not ' +
          'noticed, and it writes instead of reading.',
        settle: {
          what: 'the client end in CLOSE_WAIT and the server end in FIN_WAIT2',
          done: (view) => inState(walk, view, 'client end', 'CLOSE_WAIT') && inState(walk, view, 'server end', 'FIN_WAIT2'),
        },
      };
    },
  },
  {
    part: 2,
    who: 'client',
    name: 'write',
    run(walk) {
      const call = calls.write(walk.client, NUDGE);
      if (call.result !== NUDGE.length) failed(call);
      return {
        calls: [call.text],
        what:
          'The first write succeeds: a FIN only says the peer will send nothing more, not that it will not ' +
          `read, so the kernel took the ${NUDGE.length} bytes and sent them. The server's kernel, with nobody to ` +
          'deliver them to, answered with a reset (RST), and both lines are gone: the server end was destroyed, ' +
          `and the client end is CLOSE, which the table does not list, although fd ${walk.client} still refers to it. ` +
          'The reset left an error on the socket for its next call.',
        settle: {
          what: `no line left for connection ${walk.connection}`,
          done: (view) => end(walk, view, 'client end') === undefined && end(walk, view, 'server end') === undefined,
        },
      };
    },
  },
  {
    part: 2,
    who: 'child process',
    name: 'write',
    async run(walk) {
      return {
        calls: await childStep(['write'], walk.client),
        what:
          `The walk handed fd ${walk.client} to a child process as its fd 3 (a descriptor is a reference to the ` +
          'socket; the child\'s copy refers to the same one). The child, a Node process like this one, wrote again: ' +
          '-1, EPIPE, "Broken pipe". The kernel sent it SIGPIPE as well, but Node ignores SIGPIPE, so the child ' +
          'lived to see the error and exited normally.',
      };
    },
  },
  {
    part: 2,
    who: 'child process',
    name: 'write',
    async run(walk) {
      return {
        calls: await childStep(['write', '--default-sigpipe'], walk.client),
        what:
          "A second child first put SIGPIPE's default disposition back: signal() returned SIG_IGN, what Node had " +
          'set. Then it wrote, and write() never returned: the kernel raised SIGPIPE during the call, and its ' +
          'default action ended the process. The parent sees no exit status, only the signal. This is how a C ' +
          'server dies when it has neither ignored SIGPIPE nor sent with MSG_NOSIGNAL.',
      };
    },
  },
  {
    part: 2,
    who: 'client',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.client);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.client);
      return {
        calls: [call.text],
        what: 'The client closes its broken socket. The connection was already over, so nothing is sent and nothing is left in the table.',
      };
    },
  },
];

// --- Part 3: restarting into TIME_WAIT.

const partThree: Step[] = [
  clientSocket(3),
  clientConnect(3),
  serverAccept(3),
  {
    part: 3,
    who: 'server',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.server);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.server);
      return {
        calls: [call.text],
        what:
          'The server closes first, as a server does when it stops with clients still connected, or closes an ' +
          'idle keep-alive connection: its end is in FIN_WAIT2, the client end in CLOSE_WAIT.',
        settle: {
          what: 'the server end in FIN_WAIT2 and the client end in CLOSE_WAIT',
          done: (view) => inState(walk, view, 'server end', 'FIN_WAIT2') && inState(walk, view, 'client end', 'CLOSE_WAIT'),
        },
      };
    },
  },
  {
    part: 3,
    who: 'client',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.client);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.client);
      return {
        calls: [call.text],
        what:
          `The client closes too. Now the server end is the one in TIME_WAIT, and its local port is ${walk.port}, ` +
          'the server\'s own: for the next 60 s the kernel keeps that address pair, and so the port, in use.',
        settle: {
          what: 'the server end in TIME_WAIT and the client end gone',
          done: (view) => inState(walk, view, 'server end', 'TIME_WAIT') && end(walk, view, 'client end') === undefined,
        },
      };
    },
  },
  {
    part: 3,
    who: 'server',
    name: 'close',
    run(walk) {
      const call = calls.close(walk.listener);
      if (call.result < 0) failed(call);
      walk.fds.delete(walk.listener);
      return {
        calls: [call.text],
        what:
          'The server stops: it closes its listening socket, as the kernel does for a process that exits. The ' +
          `LISTEN line is gone and no process uses port ${walk.port}, yet the server end of connection 3 is in ` +
          `TIME_WAIT with local port ${walk.port}.`,
        settle: { what: 'no LISTEN line', done: (view) => view.acceptQueue === undefined },
      };
    },
  },
  {
    part: 3,
    who: 'child process',
    name: 'bind',
    async run(walk) {
      return {
        calls: await childStep(['restart', String(walk.port)]),
        what:
          `A new server process starts on port ${walk.port}, without SO_REUSEADDR: bind() fails with EADDRINUSE, ` +
          'although no process holds the port. The TIME_WAIT connection does.',
      };
    },
  },
  {
    part: 3,
    who: 'child process',
    name: 'bind',
    async run(walk) {
      return {
        calls: await childStep(['restart', String(walk.port), '--reuseaddr']),
        what:
          'The same restart with SO_REUSEADDR set before bind(): bind() and listen() succeed, beside the TIME_WAIT ' +
          'line. Linux allows it only if the TIME_WAIT socket had SO_REUSEADDR as well, which it inherits from the ' +
          'listening socket that accepted it: the old server must have set it too. That is why servers set it ' +
          'every time, as step 2 did, and not only after a failed restart.',
      };
    },
  },
];

export const STEPS: readonly Step[] = [...partOne, ...partTwo, ...partThree];

// --- Running the walk.

export interface WalkOptions {
  readonly port: number;
  /** Prints a block of text (a line break is added). */
  readonly print: (text: string) => void;
  /** Called between steps; resolves when the learner wants the next one. */
  readonly pause: () => Promise<void>;
}

export async function runWalk(options: WalkOptions): Promise<void> {
  const walk: Walk = {
    requestedPort: options.port,
    port: options.port,
    listener: -1,
    client: -1,
    server: -1,
    connection: 1,
    fds: new Map(),
    connections: new Map(),
  };
  let before: Descriptor[] = descriptors();
  let part = 0;
  try {
    for (const [index, step] of STEPS.entries()) {
      if (step.part !== part) {
        part = step.part;
        options.print(`\n━━ Part ${part} of 3: ${PARTS[part]!.title} ━━\n\n${wrap(PARTS[part]!.intro)}\n`);
      }
      const outcome = await step.run(walk);
      const settled = outcome.settle ? await until(walk.port, outcome.settle.done, SETTLE_TIMEOUT_MS) : true;
      const view = ownLines(walk, look(walk.port));
      options.print(
        [
          `── Step ${index + 1}/${STEPS.length} · ${step.who} · ${step.name} ──`,
          ...outcome.calls.map((line) => `  ${line}`),
          '',
          wrap(`What happened: ${outcome.what}`),
          ...(settled ? [] : [`  (Note: after ${SETTLE_TIMEOUT_MS / 1000} s the kernel had still not reached this: ${outcome.settle!.what}.)`]),
          '',
          showView(view, { fds: walk.fds, connections: walk.connections, port: walk.port }, before),
          '',
        ].join('\n'),
      );
      before = view.descriptors;
      if (index < STEPS.length - 1) await options.pause();
    }
    options.print(
      wrap(
        'The walk is over and every descriptor it opened is closed. The TIME_WAIT lines leave the table by ' +
          `themselves within a minute; watch them go with: watch -n1 "ss -tano '( sport = :${walk.port} or dport = :${walk.port} )'"`,
      ),
    );
  } finally {
    for (const fd of walk.fds.keys()) calls.close(fd);
  }
}
