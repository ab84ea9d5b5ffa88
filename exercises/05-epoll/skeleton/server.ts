/**
 * Exercise 05: an event loop by hand with epoll, in TypeScript (the model of labs/05-event-loop),
 * on the lab's bindings to the C library (shared/libc.ts).
 *
 * One thread serves every client. Every socket is non-blocking; epoll_wait() says which are ready,
 * and the loop does what each ready one allows (accept, read, write) and asks again. Nothing ever
 * waits on one client, so a thousand idle clients cost nothing while one busy one is answered.
 *
 * Two halves, in order (the checker's stages follow them):
 *   1. level-triggered (TODOs 1 to 3): epoll reports a socket for as long as it is readable;
 *   2. edge-triggered (TODOs 4 and 5): EPOLLET reports it once per arrival of bytes, so the reader
 *      must drain it until EAGAIN; and a write() that takes only part of the bytes (or says EAGAIN)
 *      leaves a remainder to keep and send when EPOLLOUT says there is room.
 *
 * Check it (from the repository root): make exercise EX=05
 * By hand: PORT=30000 node --import tsx exercises/05-epoll/work/server.ts;
 * `strace -e trace=epoll_wait,read,write -p PID` shows the loop.
 *
 * epoll_wait() blocks this thread, as in C: Node runs nothing else meanwhile, and SIGTERM's default
 * action ends the process. (The lab waits in short slices instead, so Ctrl-C can shut it down
 * gracefully: labs/05-event-loop/server.ts.)
 *
 * The plumbing is done: the non-blocking listening socket, the epoll instance and its event
 * structs, the table of clients with a place for each one's unsent bytes. The lesson is TODOs 1 to 5.
 */

import * as libc from '../../../shared/libc.js';

/**
 * One read's worth. Small on purpose: one client's message often takes several reads, which is
 * exactly what an edge-triggered loop gets wrong when it reads only once.
 */
const BUFFER_BYTES = 4096;
const MAX_EVENTS = 64;

/** One client: its socket, and the bytes it is owed that write() did not take yet (empty: none). */
interface Client {
  readonly fd: number;
  pending: Buffer;
}

/** The clients by descriptor number. */
const clients = new Map<number, Client>();

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

/** A non-blocking listening socket on 127.0.0.1:port, with SO_REUSEADDR. */
function openListener(port: number): number {
  const listener = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
  if (listener < 0) die('socket');
  if (libc.setsockopt(listener, libc.SOL_SOCKET, libc.SO_REUSEADDR, new Int32Array([1]), 4) < 0) die('setsockopt');
  const address = libc.sockaddrIn('127.0.0.1', port);
  if (libc.bind(listener, address, address.length) < 0) die('bind');
  if (libc.listen(listener, 4096) < 0) die('listen');
  return listener;
}

// struct epoll_event { uint32_t events; epoll_data_t data; }: 12 bytes on x86-64, 16 on arm64.
const layout = libc.epollEventLayout() ?? die('epoll_event: this machine\'s layout is unknown (x86-64 and arm64 only)');
const epfd = libc.epoll_create1(libc.EPOLL_CLOEXEC);
const event = new Uint8Array(layout.size);
const events = new Uint8Array(layout.size * MAX_EVENTS);
const eventView = new DataView(event.buffer);
const eventsView = new DataView(events.buffer);

/** Tells epoll what to report for `fd` (EPOLL_CTL_ADD or EPOLL_CTL_MOD); the event carries the fd. */
function watch(op: number, fd: number, wanted: number): void {
  eventView.setUint32(0, wanted >>> 0, true);
  eventView.setUint32(layout.dataOffset, fd, true);
  if (libc.epoll_ctl(epfd, op, fd, event) < 0) die('epoll_ctl');
}

/** The i-th event epoll_wait() filled in: what is ready, and for which descriptor. */
function readyEvent(i: number): { readonly ready: number; readonly fd: number } {
  return { ready: eventsView.getUint32(i * layout.size, true), fd: eventsView.getUint32(i * layout.size + layout.dataOffset, true) };
}

/**
 * The client is done (its FIN, or an error): out of the table.
 * TODO 3 (and exercise 01's lesson): libc.close() its socket too. Closing the last descriptor of a
 * socket also takes it out of epoll.
 */
function dropClient(client: Client): void {
  clients.delete(client.fd);
}

/**
 * Sends `data` to the client. TODO 5: a non-blocking write() takes what fits in the socket's send
 * buffer and returns that count (or -1 with EAGAIN when none fits). Keep the remainder in
 * client.pending (a copy: `data` is the read buffer, reused) and ask epoll for EPOLLOUT too
 * (watch(libc.EPOLL_CTL_MOD, ...)): write it in onWritable(). False when the client has gone.
 */
function sendOrKeep(client: Client, data: Buffer): boolean {
  const written = libc.write(client.fd, data, data.length);
  return written >= 0;
}

/**
 * The client is readable. Level-triggered (the first half): one read() per wake-up is enough,
 * since epoll reports the socket again while bytes remain. read() returning 0: the client has
 * gone (dropClient). -1 with libc.EAGAIN: nothing more to read now.
 * TODO 3: libc.read() into `buffer` and sendOrKeep() what came.
 * TODO 4: edge-triggered: read until read() says EAGAIN (the drain loop): bytes left behind are
 * never reported again. And with TODO 5: while bytes are pending, read nothing more (the client
 * is not reading its echo); onWritable() drains the socket once they are sent.
 */
function onReadable(client: Client, buffer: Buffer): void {
  void client;
  void buffer;
}

/**
 * TODO 5: the socket has room again (EPOLLOUT). write() the pending bytes; once none is left, ask
 * for EPOLLIN alone again (and EPOLLET) and read what arrived meanwhile (onReadable): in
 * edge-triggered mode nothing else will report it.
 */
function onWritable(client: Client, buffer: Buffer): void {
  void client;
  void buffer;
}

function main(): void {
  const port = portFromEnvironment();
  const listener = openListener(port);
  if (epfd < 0) die('epoll_create1');
  console.log(`listening on 127.0.0.1:${port}`);
  const buffer = Buffer.alloc(BUFFER_BYTES);

  // TODO 1: register the listening socket for EPOLLIN (watch(libc.EPOLL_CTL_ADD, ...)).

  for (;;) {
    const ready = libc.epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (ready < 0) {
      if (libc.errno() === libc.EINTR) continue;
      die('epoll_wait');
    }
    for (let i = 0; i < ready; i++) {
      const { ready: what, fd } = readyEvent(i);
      if (fd === listener) {
        // TODO 2: libc.accept4(listener, address, length, libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC)
        // until it says -1 (EAGAIN: several clients may be waiting; `address` a Uint8Array(16),
        // `length` a Uint32Array([16])), put each in `clients`, and register it for EPOLLIN
        // (TODO 4: EPOLLIN | EPOLLET).
        continue;
      }
      const client = clients.get(fd);
      if (!client) continue;
      if (what & (libc.EPOLLERR | libc.EPOLLHUP)) {
        dropClient(client);
        continue;
      }
      if (what & libc.EPOLLOUT) onWritable(client, buffer);
      if (clients.get(fd) === client && what & libc.EPOLLIN) onReadable(client, buffer);
    }
  }
}

main();
