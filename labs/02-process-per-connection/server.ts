/**
 * Lab 02: process per connection. The parent accepts; a fresh child process serves each client.
 *
 * Model: the classic forking server (accept, fork, the child serves, the parent goes back to
 * accept), in Node's terms: the parent's `net.Server` accepts with `pauseOnConnect` so it never
 * reads a byte, forks a new Node process, and passes it the connected socket over the IPC
 * channel (`child.send('socket', socket)`, an SCM_RIGHTS file-descriptor pass underneath). The
 * child serves that one client with its own event loop and exits when the client is gone.
 *
 * Concurrency: the kernel schedules many processes, on every core. Isolation is
 * total: a crashing child closes only its own client.
 *
 * Cost per connection: a whole Node process, tens of megabytes of memory and tens of
 * milliseconds of start-up before the first echo (this lab's README gives the measured values).
 * That start-up is paid again for every connection, which is what connection churn exposes.
 *
 * How it fails: memory runs out long before file descriptors do, so `--max-conns` (default
 * below) closes connections beyond it on accept. Under churn the machine spends its time
 * starting processes instead of echoing. (Clients that connect and leave at once are caught by
 * the look in step 1 or 2, and cost a peek instead of a process; a burst of clients waits its
 * turn to be started, MAX_STARTING at a time, so a burst cannot hold the next client for the
 * start-up of all of it.)
 *
 * What to watch: `ps --ppid PID` (or `pstree -p PID`) grows one child per open client and
 * shrinks as they leave; `ss -ltn` shows an empty accept queue.

 *
 * The loop, as the parent runs it:
 *   1. accept() a connection (libuv does it as soon as one arrives) and leave it paused, in line
 *      behind the clients accepted before it while MAX_STARTING children are starting.
 *   2. Its turn: if the client has already left (a peek finds its FIN, or its state a reset),
 *      close it: no child for it. Else fork() + exec() a new `node` running child.js, with the
 *      settings in its environment.
 *      While the child starts, look every few milliseconds whether its client is still there;
 *      if not, stop the child.
 *   3. When the child says it is ready, send it the socket; the parent then closes its own copy
 *      of the descriptor.
 *   4. Note the child's exit (libuv reaps it on SIGCHLD, so no zombie is left); go back to 1.
 *
 * Shutdown: stop accepting; tell each child that has its client to finish it (SIGTERM); a child
 * still starting gets its client first and the same order after, so every accepted client is
 * served within the shutdown timeout; at the deadline, SIGKILL whatever is left. */

import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { plural } from '../../shared/log.js';
import { RoomHub } from '../../shared/room.js';
import { gracefulClose, listen } from '../../shared/server-kit.js';
import { labInfo } from '../index.js';
import { CHILD_CONFIG_ENV, type ChildConfig } from './child-config.js';
import type { RoomMessage } from './child.js';
import { clientLeftCheck } from './client-left.js';

/*
 * This lab's default --max-conns is 100 (`defaults.maxConns` in labs/index.ts). A child is a whole
 * Node process (~45 MB resident here), so the shared default cap of 1000 clients would ask for
 * ~45 GB. 100 children stay well inside a small machine's memory; raise it with --max-conns when
 * you mean to.
 */

const CHILD_SCRIPT = fileURLToPath(new URL('./child.js', import.meta.url));

/**
 * Descriptors a fork needs for a moment: the IPC socket pair and libuv's exec-status pipe. With
 * fewer free, the client is refused rather than forked for. A fork that fails for want of
 * descriptors leaks its IPC socket in Node 20 (child_process returns early on EMFILE without
 * closing its stdio pipes), so every such failure would cost the parent a descriptor for good.
 * Found by the robust suite (case 8, a server started under `prlimit --nofile=64`).
 */
const FDS_PER_FORK = 4;

/**
 * How many more descriptors this process may open, from /proc (Linux); undefined where /proc is
 * missing. Two small reads per connection: nothing next to the fork that follows.
 */
function freeDescriptors(): number | undefined {
  try {
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return limit === undefined ? undefined : Number(limit) - readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/**
 * How often the parent looks whether the clients of children still starting have left. A child
 * takes tens of milliseconds to start, seconds under a burst; a look at every waiting client costs
 * microseconds. Only runs while some child is starting.
 */
const STARTING_CHECK_MS = 20;

/**
 * How many children may be starting at once; the clients accepted meanwhile wait their turn, in
 * order. A start-up is CPU-bound (a Node process loading its modules), so more at once than there
 * are cores starts none sooner: 200 clients that connected, sent 4 bytes and reset within 20 ms
 * made the next client wait 11 s while the parent started a child for each (issue 27, finding 7).
 * Two per core keeps every core busy while one child waits on the disk; the line is checked at
 * each turn, so a client that left while it waited costs a peek.
 */
const MAX_STARTING = 2 * availableParallelism();

export async function start(options: ServerOptions): Promise<RunningServer> {
  const { log } = options;
  const maxChildren = options.maxConns;
  const clientLeft = await clientLeftCheck();
  const children = new Set<ChildProcess>();
  /** Children forked but not yet ready for their socket, and the client each one waits for. */
  const starting = new Map<ChildProcess, { socket: net.Socket; peer: string }>();
  /** Clients accepted and waiting for a child to be started for them (step 1), oldest first. */
  const waiting: { socket: net.Socket; peer: string }[] = [];
  /** Children stopped because their client left before the handoff: their SIGKILL is ours. */
  const abandoned = new WeakSet<ChildProcess>();
  let startingCheck: NodeJS.Timeout | undefined;
  let stopping = false;
  let onNoChildren: (() => void) | undefined;
  const config: ChildConfig = {
    protocol: options.protocol,
    limits: options.limits,
    noDelay: options.noDelay,
    work: options.work,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    quiet: log.quiet,
    ...(options.sandbox ? { sandbox: options.sandboxDeny } : {}),
  };
  // The room: the parent owns the member list, since no child can see another. A child's member joins,
  // speaks and leaves through the child's IPC channel; each message goes back down the channel of
  // every other child (JSON over a Unix socket, one write and one parse per child per message).
  const hub = new RoomHub<ChildProcess>((child, delivery) => {
    if (child.connected) child.send({ type: 'room', delivery } satisfies RoomMessage, () => {});
  });
  // Serialized once: every fork passes the same settings.
  const childEnv = { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) };

  /** A child whose client has gone has nobody to serve: stop it, and close the socket. */
  const abandon = (child: ChildProcess, socket: net.Socket, peer: string) => {
    starting.delete(child);
    abandoned.add(child);
    log.client(`client ${peer} left before child pid ${child.pid} took it; child stopped`);
    // SIGKILL: the child holds no client and no state yet, and a child still loading its modules
    // has no handler that a gentler signal could reach.
    child.kill('SIGKILL');
    socket.destroy();
  };
  const watchStarting = () => {
    if (startingCheck) return;
    startingCheck = setInterval(() => {
      for (const [child, { socket, peer }] of starting) if (clientLeft(socket)) abandon(child, socket, peer);
      startNext();
      if (starting.size === 0) {
        clearInterval(startingCheck);
        startingCheck = undefined;
      }
    }, STARTING_CHECK_MS);
  };

  /** Step 2: children for the clients in line, while fewer than MAX_STARTING are starting. */
  const startNext = () => {
    while (starting.size < MAX_STARTING && waiting.length > 0) {
      const { socket, peer } = waiting.shift()!;
      startChild(socket, peer);
    }
    if (children.size === 0 && waiting.length === 0) onNoChildren?.();
  };

  // pauseOnConnect: the parent must not read a byte, or the child would miss it.
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (children.size + waiting.length >= maxChildren) {
      const inLine = waiting.length > 0 ? ` and ${plural(waiting.length, 'client')} waiting for one` : '';
      log.client(`client ${peer} refused: ${plural(children.size, 'child', 'children')} already running${inLine} (--max-conns)`);
      socket.destroy();
      return;
    }
    waiting.push({ socket, peer });
    startNext();
  });

  function startChild(socket: net.Socket, peer: string): void {
    // A client that connected and left at once (a port scan, a health check, a burst of them)
    // would cost a whole process start-up for an empty echo.
    if (clientLeft(socket)) {
      log.client(`client ${peer} left before a child was started for it`);
      socket.destroy();
      return;
    }
    if ((freeDescriptors() ?? Infinity) < FDS_PER_FORK) {
      log.client(`client ${peer} refused: out of file descriptors to start a child`);
      socket.destroy();
      return;
    }
    // execArgv: [] so the child is plain `node` even if the parent was started with a loader.
    // detached: the child leads a process group of its own, so a Ctrl-C in the terminal reaches
    // the parent alone; a child still loading its modules has no handler yet and would die of it
    // with its client. The parent's shutdown tells every child in turn (see `finish` below).
    const child = fork(CHILD_SCRIPT, [], { env: childEnv, execArgv: [], detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (child.pid === undefined) {
      // The fork itself failed (EMFILE, EAGAIN: out of descriptors or processes). Such a child
      // never runs and never emits 'exit', so it must not be counted; its 'error' event says why.
      // The client is closed: refused, like one over the cap. Found by the robust suite (case 8).
      child.on('error', (error) => log.warn(`client ${peer} refused: cannot start a child: ${error.message}`));
      socket.destroy();
      return;
    }
    children.add(child);
    starting.set(child, { socket, peer });
    watchStarting();
    log.client(`client ${peer} handed to child pid ${child.pid}`);
    // The socket goes over only once the child says it listens (see child.ts for why).
    let handedOver = false;
    child.once('message', (message: unknown) => {
      if (message !== 'ready' || !starting.has(child)) return;
      starting.delete(child);
      startNext();
      if (clientLeft(socket)) {
        abandon(child, socket, peer);
        return;
      }
      handedOver = true;
      child.send('socket', socket, (error) => {
        // The child died before taking the socket (or the client left first): nobody else will
        // close it, so the parent must.
        if (error) {
          log.warn(`could not hand client ${peer} to child ${child.pid}: ${error.message}`);
          socket.destroy();
        }
      });
      // A client accepted before the shutdown is served like any other: its child, ready only
      // now, gets the socket first and the order to finish second.
      if (stopping) child.kill('SIGTERM');
    });
    child.on('message', (message: RoomMessage | string) => {
      if (typeof message === 'object' && message !== null && 'request' in message) hub.handle(child, message.request);
    });
    child.on('exit', (code, signal) => {
      // Its member (if it had joined and not said goodbye) is gone with it.
      hub.detach(child);
      children.delete(child);
      starting.delete(child);
      // A child that died before it was ready leaves the socket to the parent to close.
      if (!handedOver) socket.destroy();
      // During shutdown the parent signals its children itself; only other endings are news.
      const expected =
        code === 0 || (stopping && (signal === 'SIGTERM' || signal === 'SIGKILL')) || (abandoned.has(child) && signal === 'SIGKILL');
      if (!expected) log.warn(`child ${child.pid} serving ${peer} ended with ${signal ?? `exit code ${code}`}; its client is closed, others are unaffected`);
      startNext();
    });
    child.on('error', (error) => log.warn(`child for ${peer}: ${error.message}`));
  }

  const address = await listen(server, options);
  const close = gracefulClose(
    {
      stopAccepting: () => server.close(),
      // Each child finishes its client within its own copy of the shutdown timeout. A child still
      // starting is not signalled yet: it would die before its handler exists, and its client
      // with it. It is told once it has its socket (the 'ready' handler above).
      finish: () => {
        stopping = true;
        for (const child of children) if (!starting.has(child)) child.kill('SIGTERM');
      },
      // The deadline: whatever is left, started or not.
      force: () => {
        stopping = true;
        for (const { socket } of waiting.splice(0)) socket.destroy();
        for (const child of children) child.kill('SIGKILL');
        if (children.size === 0) onNoChildren?.();
      },
      drained: () =>
        children.size === 0 && waiting.length === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              onNoChildren = resolve;
            }),
    },
    options.shutdownTimeoutMs,
  );
  return { address, close };
}

export const lab: Lab = { info: labInfo('02-process-per-connection'), start };
