/**
 * Exercise 01, completed by hand as a learner would (test/exercises/: the checker must pass it).
 *
 * Exercise 01: a serial echo server in TypeScript (the model of labs/01-serial), on the lab's own
 * bindings to the C library (shared/libc.ts): the same calls a C server makes, one at a time.
 *
 * One client at a time: accept() a connection, echo everything it sends until it closes, close
 * it, accept() the next. While one client is served, the next waits in the kernel's accept queue.
 *
 * Check it (from the repository root): make exercise EX=01
 * By hand: PORT=30000 node --import tsx exercises/01-serial/work/server.ts, then `nc 127.0.0.1 30000`
 * in two more terminals.
 *
 * Every call here blocks this thread, as in C: while the server waits in accept() or read(), Node
 * runs nothing else (no timer, no signal handler). That is this model, and why SIGTERM needs no
 * code (TODO 6). The lab itself waits in short poll()s instead, so that Ctrl-C can shut it down
 * gracefully (labs/01-serial/server.ts).
 *
 * The plumbing is done: the port from $PORT, the socket, the address, error messages. The lesson
 * is left to you, as TODOs 1 to 6; the checker's failures name the TODO to look at.
 */

import * as libc from '../../../shared/libc.js';

/** One read's worth; a client may send more in a message, which then takes several reads. */
const BUFFER_BYTES = 65536;

/** Prints what failed and why (errno), and exits: for errors the server cannot go on after. */
function die(what: string): never {
  const error = libc.errno();
  console.error(`${what}: ${libc.strerror(error)} (${libc.errnoName(error)})`);
  process.exit(1);
}

/** The port the checker (or you) chose, from the environment: PORT=30000. */
function portFromEnvironment(): number {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error('set PORT to the port to listen on, e.g. PORT=30000');
    process.exit(2);
  }
  return port;
}

/**
 * Writes all of `data` to `fd`. Returns true, or false when the client has gone (EPIPE,
 * ECONNRESET). TODO 4 (with serve below): write() may take fewer bytes than asked (a short write;
 * `data.subarray(written)` is the rest), and may be interrupted by a signal (-1 with errno EINTR,
 * nothing written): loop until all is written.
 */
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

/**
 * Serves one client until it closes its side. TODO 4: libc.read() what the client sends into
 * `buffer` and writeAll() it back (`buffer.subarray(0, got)`); again, until read() returns 0 (the
 * client's FIN: it has nothing more to say). -1 with libc.errno() === libc.EINTR: read again. Any
 * other -1: the client is gone (a reset): stop.
 */
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

function main(): void {
  const port = portFromEnvironment();
  // SIGPIPE: Node already ignores it, so a write to a client that has gone says EPIPE instead of killing us.

  // TODO 6: SIGTERM (and Ctrl-C's SIGINT) must end the server. Their default action does, and
  // Node keeps it while nobody calls process.on('SIGTERM'): leave it so. (A JavaScript handler
  // would never run: this thread is inside accept() or read() whenever a signal comes.)

  const listener = libc.socket(libc.AF_INET, libc.SOCK_STREAM, 0);
  if (listener < 0) die('socket');

  // TODO 1: libc.setsockopt(listener, libc.SOL_SOCKET, libc.SO_REUSEADDR, new Int32Array([1]), 4),
  // before bind(). Without it, a restart fails with EADDRINUSE ("Address already in use") for
  // about a minute after the server closed a connection first (its end waits in TIME_WAIT).
  if (libc.setsockopt(listener, libc.SOL_SOCKET, libc.SO_REUSEADDR, new Int32Array([1]), 4) < 0) die('setsockopt');

  // 127.0.0.1: an echo server is not for the world. A struct sockaddr_in, 16 bytes.
  const address = libc.sockaddrIn('127.0.0.1', port);

  // TODO 2: libc.bind() the listener to `address` (its length is address.length), then
  // libc.listen() with a backlog (128 is plenty). Then say so: console.log(`listening on
  // 127.0.0.1:${port}`) (for you: the checker looks at the socket itself).
  if (libc.bind(listener, address, address.length) < 0) die('bind');
  if (libc.listen(listener, 128) < 0) die('listen');
  console.log(`listening on 127.0.0.1:${port}`);

  // TODO 3: the loop. libc.accept(listener, null, null) the next client (-1 with EINTR: try again),
  // serve() it, and
  // TODO 5: libc.close() its socket when serve() returns, then accept() the next.
  const buffer = Buffer.alloc(BUFFER_BYTES);
  for (;;) {
    const client = libc.accept(listener, null, null);
    if (client < 0) {
      if (libc.errno() === libc.EINTR) continue;
      die('accept');
    }
    serve(client, buffer);
    libc.close(client);
  }
}

main();
