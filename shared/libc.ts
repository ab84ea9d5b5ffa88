/**
 * The Linux system calls the labs make themselves (lab 01 today), called straight from C's libc through `koffi` (FFI).
 *
 * Why not `net`: Node's net.Server accepts every connection as soon as the kernel has it, so the
 * listen backlog is always empty and the lab could not show clients waiting in it. Here the server
 * calls accept4() only when it is ready for the next client, exactly as a C server does.
 *
 * Conventions, as in C: every call returns -1 on failure and `errno()` then says why; buffers are
 * Node Buffers or typed arrays, which koffi passes as a pointer to their bytes (subarrays
 * included), valid for the duration of the call only.
 *
 * Simplification: the constants below are the generic Linux values, right for x86-64 and arm64
 * (the machines this project runs on). A few architectures (MIPS, SPARC, Alpha) number some of
 * them differently; a portable program would take them from the C headers.
 *
 * Importing this file loads libc.so.6, so server.ts imports it only after checking for Linux.
 */

import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

// --- The calls, with their C prototypes. `intptr_t` stands in for ssize_t, `uint32_t` for socklen_t.

/** Creates a socket; returns its file descriptor. */
export const socket: (domain: number, type: number, protocol: number) => number = libc.func(
  'int socket(int domain, int type, int protocol)',
);
export const setsockopt: (fd: number, level: number, name: number, value: Int32Array, length: number) => number =
  libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t length)');
/** `address` is a 16-byte struct sockaddr_in (see `sockaddrIn`). */
export const bind: (fd: number, address: Uint8Array, length: number) => number = libc.func(
  'int bind(int fd, void *address, uint32_t length)',
);
export const listen: (fd: number, backlog: number) => number = libc.func('int listen(int fd, int backlog)');
/** Takes one connection off the listening socket's accept queue; fills in the peer's address. */
export const accept4: (fd: number, address: Uint8Array, length: Uint32Array, flags: number) => number = libc.func(
  'int accept4(int fd, void *address, void *length, int flags)',
);
export const getsockname: (fd: number, address: Uint8Array, length: Uint32Array) => number = libc.func(
  'int getsockname(int fd, void *address, void *length)',
);
/** Returns bytes read, 0 at the peer's FIN, or -1. */
export const read: (fd: number, buffer: Uint8Array, count: number) => number = libc.func(
  'intptr_t read(int fd, void *buffer, size_t count)',
);
/** Returns bytes written, which may be fewer than `count` (a short write), or -1. */
export const write: (fd: number, buffer: Uint8Array, count: number) => number = libc.func(
  'intptr_t write(int fd, void *buffer, size_t count)',
);
export const shutdown: (fd: number, how: number) => number = libc.func('int shutdown(int fd, int how)');
/**
 * A second descriptor for the same open socket (lab 06). The socket stays open until every
 * descriptor for it is closed, so one copy can be handed on while another is closed.
 */
export const dup: (fd: number) => number = libc.func('int dup(int fd)');
export const close: (fd: number) => number = libc.func('int close(int fd)');
/** `fds` is an array of struct pollfd (see `PollFd`); `timeoutMs` bounds the wait. */
export const poll: (fds: Int32Array, count: number, timeoutMs: number) => number = libc.func(
  'int poll(void *fds, unsigned long count, int timeout)',
);

/** errno as the last call through koffi left it. Read it right after the call that failed. */
export const errno = (): number => koffi.errno();

// --- Constants from <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h>, <poll.h>.

export const AF_INET = 2;
export const SOCK_STREAM = 1;
/** Flags for socket() and accept4(): non-blocking (so every wait is a bounded poll), close-on-exec. */
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
/**
 * Lets several sockets bind and listen on the same address and port (Linux 3.9); the kernel then
 * gives each new connection to one of them, by a hash of its addresses and ports. Every socket in
 * the group must set it before bind(), under the same user (lab 06).
 */
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const TCP_NODELAY = 1;
/**
 * shutdown(SHUT_RD) on a listening socket takes it out of LISTEN for every descriptor that refers
 * to it, in every thread and process, and wakes them all; a close() would not while another
 * descriptor for it is open (lab 06).
 */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;

/** errno values by name, from koffi's table of this libc's codes. */
const codes = koffi.os.errno;
const code = (name: string): number => {
  const value = codes[name];
  if (value === undefined) throw new Error(`koffi does not know errno ${name}`);
  return value;
};
export const EAGAIN = code('EAGAIN'); // also EWOULDBLOCK on Linux
export const EINTR = code('EINTR');
export const EMFILE = code('EMFILE');
export const ENFILE = code('ENFILE');
export const ENOBUFS = code('ENOBUFS');
export const ENOMEM = code('ENOMEM');
/**
 * accept4() errors that concern only the one connection being accepted: it was reset while it
 * waited (ECONNABORTED), or, as accept(2) says Linux does, a network error already pending on the
 * new socket is reported by accept itself. The man page's advice: treat them like EAGAIN and retry.
 */
export const ACCEPT_RETRY_ERRORS: ReadonlySet<number> = new Set(
  ['ECONNABORTED', 'EPROTO', 'EPERM', 'ENETDOWN', 'ENOPROTOOPT', 'EHOSTDOWN', 'ENONET', 'EHOSTUNREACH', 'EOPNOTSUPP', 'ENETUNREACH'].map(code),
);

const names = new Map(Object.entries(codes).map(([name, value]) => [value, name]));
names.set(EAGAIN, 'EAGAIN');

/** 104 -> "ECONNRESET", for log lines and for `bindError`, which speaks Node's error codes. */
export function errnoName(value: number): string {
  return names.get(value) ?? `errno ${value}`;
}

/** A failed call as a Node-style error (`code`, `errno`, `syscall`), for errors that are bugs. */
export function callError(syscall: string, value: number): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${syscall}: ${errnoName(value)}`);
  error.code = errnoName(value);
  error.errno = value;
  error.syscall = syscall;
  return error;
}

// --- Structs.

/**
 * struct sockaddr_in for `host:port`: family in host order, then port and address in network
 * (big-endian) order, then 8 bytes of padding.
 */
export function sockaddrIn(host: string, port: number): Uint8Array {
  const address = new Uint8Array(16);
  new Uint16Array(address.buffer, 0, 1)[0] = AF_INET; // host order: a native-endian view
  address[2] = port >> 8;
  address[3] = port & 0xff;
  address.set(host.split('.').map(Number), 4);
  return address;
}

/** "127.0.0.1:54321" from a struct sockaddr_in that accept4() or getsockname() filled in. */
export function formatSockaddrIn(address: Uint8Array): string {
  return `${address[4]}.${address[5]}.${address[6]}.${address[7]}:${(address[2]! << 8) | address[3]!}`;
}

/**
 * One struct pollfd { int fd; short events; short revents; }, reused for every poll() so that
 * waiting allocates nothing. Two views on the same 8 bytes, both native-endian like the struct.
 */
export class PollFd {
  readonly words = new Int32Array(2);
  readonly #halves = new Int16Array(this.words.buffer);

  set(fd: number, events: number): void {
    this.words[0] = fd;
    this.#halves[2] = events;
    this.#halves[3] = 0;
  }
}
