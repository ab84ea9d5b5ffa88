/**
 * Lab 02: process per connection. The parent accepts; a fresh child process serves each client.
 *
 * Model: the classic forking server (accept, fork, the child serves, the parent goes back to
 * accept), in Node's terms: the parent's `net.Server` accepts with `pauseOnConnect` so it never
 * reads a byte, forks a new Node process, and passes it the connected socket over the IPC
 * channel (`child.send('socket', socket)`, an SCM_RIGHTS file-descriptor pass underneath). The
 * child serves that one client with its own event loop and exits when the client is gone.
 *
 * The loop, as the parent runs it:
 *   1. accept() a connection (libuv does it as soon as one arrives) and leave it paused.
 *   2. fork() + exec() a new `node` running child.js, with the settings in its environment.
 *   3. Send the socket to the child; the parent then closes its own copy of the descriptor.
 *   4. Note the child's exit (libuv reaps it on SIGCHLD, so no zombie is left); go back to 1.
 *
 * Concurrency comes from the kernel scheduling many processes, on every core. Isolation is
 * total: a crashing child closes only its own client.
 *
 * Cost per connection: a whole Node process, tens of megabytes of memory and tens of
 * milliseconds of start-up before the first echo (this lab's README gives the measured values).
 * That start-up is paid again for every connection, which is what connection churn exposes.
 *
 * How it fails: memory runs out long before file descriptors do, so `--max-conns` (default
 * below) closes connections beyond it on accept. Under churn the machine spends its time
 * starting processes instead of echoing.
 *
 * What to watch: `ps --ppid PID` (or `pstree -p PID`) grows one child per open client and
 * shrinks as they leave; `ss -ltn` shows an empty accept queue.
 */

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Lab, RunningServer, ServerOptions } from '../../shared/lab.js';
import { gracefulClose, listen } from '../../shared/server-kit.js';
import { CHILD_CONFIG_ENV, type ChildConfig } from './child-config.js';

/**
 * A child is a whole Node process (~45 MB resident here), so the shared default cap of 1000
 * clients would ask for ~45 GB. 100 children stay well inside a small machine's memory; raise it
 * with --max-conns when you mean to.
 */
export const MAX_CHILDREN = 100;

const CHILD_SCRIPT = fileURLToPath(new URL('./child.js', import.meta.url));

export async function start(options: ServerOptions): Promise<RunningServer> {
  const { log } = options;
  const maxChildren = Math.min(options.maxConns, MAX_CHILDREN);
  const children = new Set<ChildProcess>();
  let stopping = false;
  let onNoChildren: (() => void) | undefined;
  const config: ChildConfig = {
    protocol: options.protocol,
    limits: options.limits,
    work: options.work,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    quiet: log.quiet,
  };
  // Serialized once: every fork passes the same settings.
  const childEnv = { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) };

  // pauseOnConnect: the parent must not read a byte, or the child would miss it.
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (children.size >= maxChildren) {
      log.client(`client ${peer} refused: ${children.size} children already running (--max-conns)`);
      socket.destroy();
      return;
    }
    // execArgv: [] so the child is plain `node` even if the parent was started with a loader.
    const child = fork(CHILD_SCRIPT, [], { env: childEnv, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(child);
    log.client(`client ${peer} handed to child pid ${child.pid}`);
    child.send('socket', socket, (error) => {
      // The child died before taking the socket (or the client left first): nobody else will
      // close it, so the parent must.
      if (error) {
        log.warn(`could not hand client ${peer} to child ${child.pid}: ${error.message}`);
        socket.destroy();
      }
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      // During shutdown the parent signals its children itself; only other endings are news.
      const expected = code === 0 || (stopping && (signal === 'SIGTERM' || signal === 'SIGKILL'));
      if (!expected) log.warn(`child ${child.pid} serving ${peer} ended with ${signal ?? `exit code ${code}`}; its client is closed, others are unaffected`);
      if (children.size === 0) onNoChildren?.();
    });
    child.on('error', (error) => log.warn(`child for ${peer}: ${error.message}`));
  });

  const address = await listen(server, options);
  const signalAll = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const child of children) child.kill(signal);
  };
  const close = gracefulClose(
    {
      stopAccepting: () => server.close(),
      // Each child finishes its client within its own copy of the shutdown timeout.
      finish: () => signalAll('SIGTERM'),
      force: () => signalAll('SIGKILL'),
      drained: () =>
        children.size === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              onNoChildren = resolve;
            }),
    },
    options.shutdownTimeoutMs,
  );
  return { address, close };
}

export const lab: Lab = { id: '02-process-per-connection', model: 'process per connection, one forked child per client', start };
