/**
 * Exercise chat: a chat room on epoll, in TypeScript (the room of labs/05-event-loop,
 * PROTOCOL=chat; and of antirez's smallchat), on the lab's bindings to the C library (shared/libc.ts).
 *
 * Every complete line a member sends (ended by \n) goes to every OTHER member as "NAME: line\n".
 * One thread serves the room with epoll, level-triggered. The lesson is the room's write path: a
 * member that never reads must not stall the others. A blocking write() to it waits, once its
 * socket's buffers are full, for as long as it does not read: the whole room with it.
 *
 * Check it (from the repository root): make exercise EX=chat
 * By hand: PORT=30000 node --import tsx exercises/chat/work/server.ts, then `nc 127.0.0.1 30000`
 * in three terminals and talk.
 *
 * The plumbing is done: the listening socket, the epoll loop, accepting members, their names,
 * cutting the bytes they send into lines. The lesson is TODOs 1 to 3.
 */

import * as libc from '../../../shared/libc.js';

const BUFFER_BYTES = 4096;
/** Longest line a member may send (without its \n); a longer one cuts the member off. */
const MAX_LINE = 4096;
/**
 * Most bytes queued for one member that is not reading (TODO 2): past it the member is cut off.
 * A simplification: a real server might drop that member's oldest lines instead.
 */
const MAX_QUEUE_BYTES = 1024 * 1024;
const MAX_EVENTS = 64;

interface Member {
  readonly fd: number;
  readonly name: string;
  /** The line being received: bytes after the last \n. */
  line: Buffer;
  /** TODO 2: what write() did not take yet, oldest first. */
  queue: Buffer[];
  queuedBytes: number;
}

const members = new Map<number, Member>();
let named = 0;

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

function watch(op: number, fd: number, wanted: number): void {
  eventView.setUint32(0, wanted >>> 0, true);
  eventView.setUint32(layout.dataOffset, fd, true);
  if (libc.epoll_ctl(epfd, op, fd, event) < 0) die('epoll_ctl');
}

function readyEvent(i: number): { readonly ready: number; readonly fd: number } {
  return { ready: eventsView.getUint32(i * layout.size, true), fd: eventsView.getUint32(i * layout.size + layout.dataOffset, true) };
}

/**
 * The member leaves the room (its FIN, an error, or cut off).
 * TODO 3: libc.close() its socket too (which also takes it out of epoll).
 */
function leave(member: Member): void {
  members.delete(member.fd);
}

/** Writes all of `data`, however many calls it takes; false when the member has gone. */
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
 * Sends `data` to `member`. As given, it writes it all before returning: on a blocking socket,
 * write() waits while the member's buffers are full, so one member that never reads stops the
 * whole room.
 * TODO 2: never wait. Accept members with SOCK_NONBLOCK (in main); write() what the socket takes
 * now (none if -1 with EAGAIN) and queue the rest in member.queue (behind what is queued already:
 * then write nothing now), and ask epoll for EPOLLOUT too (watch(libc.EPOLL_CTL_MOD, fd,
 * libc.EPOLLIN | libc.EPOLLOUT)): onWritable() sends the queue. A member whose queue would pass
 * MAX_QUEUE_BYTES is cut off (leave()).
 */
function deliver(member: Member, data: Buffer): void {
  if (!writeAll(member.fd, data)) leave(member);
}

/** TODO 2: the member's socket has room (EPOLLOUT): write the queue; once it is empty, ask for EPOLLIN alone. */
function onWritable(member: Member): void {
  void member;
}

/**
 * A complete line from `from` (without its \n).
 * TODO 1: deliver "NAME: line\n" (NAME: from.name) to every other member of `members`. (Copy the
 * map's values first: a member cut off while you deliver leaves it.)
 */
function onLine(from: Member, line: Buffer): void {
  void from;
  void line;
  void deliver;
}

/** The member is readable: one read() (level-triggered: epoll reports it again while bytes remain), cut into lines. */
function onReadable(member: Member, buffer: Buffer): void {
  const got = libc.read(member.fd, buffer, buffer.length);
  if (got < 0 && (libc.errno() === libc.EAGAIN || libc.errno() === libc.EINTR)) return;
  if (got <= 0) return leave(member); // 0: its FIN; -1: it is gone
  let bytes = buffer.subarray(0, got);
  for (let newline = bytes.indexOf(10); newline >= 0; newline = bytes.indexOf(10)) {
    let line = Buffer.concat([member.line, bytes.subarray(0, newline)]);
    if (line.at(-1) === 13) line = line.subarray(0, -1); // nc -C and telnet send \r\n
    member.line = Buffer.alloc(0);
    bytes = bytes.subarray(newline + 1);
    onLine(member, line);
    if (members.get(member.fd) !== member) return; // it left while its line was relayed
  }
  member.line = Buffer.concat([member.line, bytes]);
  if (member.line.length > MAX_LINE) leave(member); // a line too long: cut off
}

function main(): void {
  const port = portFromEnvironment();
  const listener = openListener(port);
  if (epfd < 0) die('epoll_create1');
  watch(libc.EPOLL_CTL_ADD, listener, libc.EPOLLIN);
  console.log(`listening on 127.0.0.1:${port}`);
  const buffer = Buffer.alloc(BUFFER_BYTES);
  const address = new Uint8Array(16);
  const length = new Uint32Array(1);

  for (;;) {
    const ready = libc.epoll_wait(epfd, events, MAX_EVENTS, -1);
    if (ready < 0) {
      if (libc.errno() === libc.EINTR) continue;
      die('epoll_wait');
    }
    for (let i = 0; i < ready; i++) {
      const { ready: what, fd } = readyEvent(i);
      if (fd === listener) {
        for (;;) {
          length[0] = address.length;
          // Blocking sockets, for now (TODO 2: libc.SOCK_NONBLOCK too).
          const accepted = libc.accept4(listener, address, length, libc.SOCK_CLOEXEC);
          if (accepted < 0) break; // EAGAIN: nobody else waits
          members.set(accepted, { fd: accepted, name: `user${++named}`, line: Buffer.alloc(0), queue: [], queuedBytes: 0 });
          watch(libc.EPOLL_CTL_ADD, accepted, libc.EPOLLIN);
        }
        continue;
      }
      const member = members.get(fd);
      if (!member) continue;
      if (what & (libc.EPOLLERR | libc.EPOLLHUP)) {
        leave(member);
        continue;
      }
      if (what & libc.EPOLLOUT) onWritable(member);
      if (members.get(fd) === member && what & libc.EPOLLIN) onReadable(member, buffer);
    }
  }
}

main();
