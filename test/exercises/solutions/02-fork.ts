/**
 * Exercise 02, completed by hand as a learner would (test/exercises/: the checker must pass it).
 *
 * Exercise 02: a process per connection in TypeScript (the model of
 * labs/02-process-per-connection), on the lab's bindings to the C library (shared/libc.ts).
 *
 * The parent accepts; for each client it starts a child process that serves that client alone.
 * The parent goes straight back to accept(), so no client waits for another: the kernel runs the
 * children side by side. Two things are easy to forget: the parent's copy of each client's socket
 * (close it, or descriptors pile up and clients never see the end of their connection), and the
 * children that have exited (wait for them, or each stays a zombie in the process table).
 *
 * Node cannot fork() itself (the C skeleton, server.c, does: there the child runs serve()), so the
 * child here is a program started with posix_spawn(3), which is fork() and exec() in one call:
 * cat(1), with the client's socket as its standard input and output, as inetd started servers.
 * cat echoes: it reads its input and writes it out until the end of it, the client's FIN.
 *
 * Check it (from the repository root): make exercise EX=02
 * By hand: PORT=30000 node --import tsx exercises/02-fork/work/server.ts; `nc 127.0.0.1 30000` in
 * two terminals; `ps --ppid PID -o pid,stat,cmd` shows the children (Z: a zombie).
 *
 * The plumbing is done: the listening socket, serve() (exercise 01's loop) and the spawn's
 * descriptor setup. The lesson is TODOs 1 to 3.
 */

import * as libc from '../../../shared/libc.js';

const BUFFER_BYTES = 65536;

function die(what: string): never {
  const error = libc.errno();
  console.error(`${what}: ${libc.strerror(error)} (${libc.errnoName(error)})`);
  process.exit(1);
}

function portFromEnvironment(): number {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error('set PORT to the port to listen on, e.g. PORT=30000');
    process.exit(2);
  }
  return port;
}

/** Writes all of `data`, however many calls it takes; false when the client has gone. */
function writeAll(fd: number, data: Buffer): boolean {
  let rest = data;
  while (rest.length > 0) {
    const written = libc.write(fd, rest, rest.length);
    if (written < 0) {
      if (libc.errno() === libc.EINTR) continue;
      return false;
    }
    rest = rest.subarray(written);
  }
  return true;
}

/** Echoes what the client sends until it closes its side (exercise 01's loop). */
function serve(client: number, buffer: Buffer): void {
  for (;;) {
    const got = libc.read(client, buffer, buffer.length);
    if (got === 0) return;
    if (got < 0) {
      if (libc.errno() === libc.EINTR) continue;
      return;
    }
    if (!writeAll(client, buffer.subarray(0, got))) return;
  }
}

/**
 * The listening socket on 127.0.0.1:port, with SO_REUSEADDR (exercise 01). SOCK_CLOEXEC: a child
 * started with exec() does not inherit it (the C version's child close()s it instead).
 */
function openListener(port: number): number {
  const listener = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_CLOEXEC, 0);
  if (listener < 0) die('socket');
  if (libc.setsockopt(listener, libc.SOL_SOCKET, libc.SO_REUSEADDR, new Int32Array([1]), 4) < 0) die('setsockopt');
  const address = libc.sockaddrIn('127.0.0.1', port);
  if (libc.bind(listener, address, address.length) < 0) die('bind');
  if (libc.listen(listener, 128) < 0) die('listen');
  return listener;
}

/**
 * Starts `cat` with `client` as its standard input (0) and output (1): the child that serves this
 * client. Returns its pid, or -1 (with the reason printed) when it could not be started.
 */
function startChild(client: number): number {
  const actions = new Uint8Array(libc.SPAWN_FILE_ACTIONS_BYTES);
  libc.posix_spawn_file_actions_init(actions);
  libc.posix_spawn_file_actions_adddup2(actions, client, 0);
  libc.posix_spawn_file_actions_adddup2(actions, client, 1);
  const pid: [number] = [0];
  const environment = Object.entries(process.env).map(([name, value]) => `${name}=${value}`);
  const error = libc.posix_spawnp(pid, 'cat', actions, null, ['cat', null], [...environment, null]);
  libc.posix_spawn_file_actions_destroy(actions);
  if (error !== 0) {
    console.error(`posix_spawnp cat: ${libc.strerror(error)}`);
    return -1;
  }
  return pid[0];
}

function main(): void {
  const port = portFromEnvironment();
  const listener = openListener(port);
  console.log(`listening on 127.0.0.1:${port}`);
  const buffer = Buffer.alloc(BUFFER_BYTES);

  for (;;) {
    // TODO 3: reap the children that have exited: libc.waitpid(-1, null, libc.WNOHANG) until it
    // returns 0 (none more has exited) or -1 (no child left). Until a parent waits for it, an exited
    // child stays a zombie (state Z in ps). A C server reaps in a SIGCHLD handler; here no
    // JavaScript runs while accept() blocks, so the loop reaps each time a client arrives.
    while (libc.waitpid(-1, null, libc.WNOHANG) > 0) {
      // one more child reaped
    }

    // accept4 with SOCK_CLOEXEC: only the child's descriptors 0 and 1 (set by startChild) reach cat.
    const client = libc.accept4(listener, new Uint8Array(16), new Uint32Array([16]), libc.SOCK_CLOEXEC);
    if (client < 0) {
      if (libc.errno() === libc.EINTR) continue;
      die('accept4');
    }
    // TODO 1: instead of serving the client here, startChild(client): a child serves it, and the
    // parent goes straight back to accept().
    // TODO 2: then the parent libc.close()s its copy of `client`: the child has its own. Until both
    // copies are closed the connection stays open, and the parent runs out of descriptors.
    startChild(client);
    libc.close(client);
  }
}

main();
