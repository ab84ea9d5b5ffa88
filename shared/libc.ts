/**
 * The Linux system calls the labs and experiments make themselves (lab 01's whole loop, lab 02's
 * look at a client, lab 05's event loop, the raw clients and the walk in bench/), called straight
 * from C's libc through `koffi` (FFI).
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
/** `value`: an int (Int32Array), or a struct timeval for SO_RCVTIMEO and SO_SNDTIMEO (a BigInt64Array of seconds and microseconds). */
export const setsockopt: (fd: number, level: number, name: number, value: Int32Array | BigInt64Array, length: number) => number =
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
/** The client's side of the handshake: blocks until it is established or fails; non-blocking: -1 with EINPROGRESS, then poll for POLLOUT. */
export const connect: (fd: number, address: Uint8Array, length: number) => number = libc.func(
  'int connect(int fd, void *address, uint32_t length)',
);
/** accept4() without flags, as textbooks write it; `address` and `length` may be null. */
export const accept: (fd: number, address: Uint8Array | null, length: Uint32Array | null) => number = libc.func(
  'int accept(int fd, void *address, void *length)',
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
/**
 * Returns bytes received, 0 at the peer's FIN, or -1. With MSG_PEEK the bytes stay queued: lab 02's
 * parent looks whether a client it has not read from is still there.
 */
export const recv: (fd: number, buffer: Uint8Array, count: number, flags: number) => number = libc.func(
  'intptr_t recv(int fd, void *buffer, size_t count, int flags)',
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

/** write() with flags: MSG_MORE says more data follows, so the kernel holds a partial segment back. */
export const send: (fd: number, buffer: Uint8Array, count: number, flags: number) => number = libc.func(
  'intptr_t send(int fd, void *buffer, size_t count, int flags)',
);
/** Reads a socket option into `value`; `length` holds its size in and the size written out. */
export const getsockopt: (fd: number, level: number, name: number, value: Uint8Array | Int32Array, length: Uint32Array) => number = libc.func(
  'int getsockopt(int fd, int level, int name, void *value, void *length)',
);
/**
 * Sets a signal's disposition; returns the previous one. The real prototype takes and returns a
 * function pointer, `void (*handler)(int)`; declared as intptr_t (the same register on x86-64 and
 * arm64) it carries SIG_DFL and SIG_IGN, the only handlers a JavaScript caller can pass safely.
 */
export const signal: (signum: number, handler: number) => number = libc.func('intptr_t signal(int signum, intptr_t handler)');
/** The C library's own message for an errno value, e.g. "Broken pipe" for EPIPE. */
export const strerror: (value: number) => string = libc.func('const char *strerror(int value)');

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
/** While set, the kernel sends only full segments; clearing it sends what is held at once. */
export const TCP_CORK = 3;
/** struct tcp_info: the kernel's per-connection counters (see `tcpInfo` below). */
export const TCP_INFO = 11;
/** tcpi_state of a connection that is over (include/net/tcp_states.h): a reset, or both sides closed. */
export const TCP_CLOSE = 7;
export const SO_ERROR = 4;
export const MSG_MORE = 0x8000;
/**
 * shutdown(SHUT_RD) on a listening socket takes it out of LISTEN for every descriptor that refers
 * to it, in every thread and process, and wakes them all; a close() would not while another
 * descriptor for it is open (lab 06).
 */
export const SHUT_RD = 0;
export const SHUT_WR = 1;
/**
 * Both ways. From another thread, the one call that wakes a thread blocked in read() or write()
 * on the socket (read returns 0, write fails with EPIPE); close() does not, and leaves the blocked
 * call holding the socket open (lab 08).
 */
export const SHUT_RDWR = 2;
/**
 * How long a blocking receive (read, accept) or send (write, sendfile) may wait, a struct timeval;
 * past it the call returns what it moved so far, or -1 with EAGAIN (lab 08's limits). 0: no limit.
 * (The _OLD numbers, with a timeval of two longs: the same struct on x86-64 and arm64.)
 */
export const SO_RCVTIMEO = 20;
export const SO_SNDTIMEO = 21;
/** recv() flags: leave the bytes queued; do not wait even on a blocking socket. */
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
/** From <signal.h>: the signal a write to a broken connection raises, and the two fixed dispositions. */
export const SIGPIPE = 13;
export const SIG_DFL = 0;
export const SIG_IGN = 1;

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
export const EINPROGRESS = code('EINPROGRESS');
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

const socketErrorValue = new Int32Array(1);
const socketErrorLength = new Uint32Array(1);

/** The socket's pending error (getsockopt SO_ERROR, which clears it), as an errno; 0 when none. */
export function socketError(fd: number): number {
  socketErrorLength[0] = 4;
  socketErrorValue[0] = 0;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, socketErrorValue, socketErrorLength);
  return socketErrorValue[0]!;
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

/**
 * The fields of struct tcp_info (linux/tcp.h) that the experiments read, at their offsets in the
 * kernel's layout, which only ever grows at the end: segments sent and received, the delayed-ACK
 * timeout (ato), the smoothed round-trip time, and the segments that carried data.
 */
export interface TcpInfo {
  /** The connection's TCP state (tcpi_state): TCP_CLOSE once a reset has ended it. */
  readonly state: number;
  /** Delayed-ACK timeout the kernel uses for this connection now, µs (tcpi_ato). */
  readonly atoUs: number;
  /** Smoothed round-trip time, µs (tcpi_rtt). */
  readonly rttUs: number;
  /** Segments sent, retransmissions included (tcpi_segs_out). */
  readonly segsOut: number;
  /** Segments received (tcpi_segs_in). */
  readonly segsIn: number;
  /** Segments sent that carried data: without the pure ACKs (tcpi_data_segs_out). */
  readonly dataSegsOut: number;
}

const TCP_INFO_BYTES = 232; // a current kernel's size; a shorter answer from an older one is read as far as it goes
const tcpInfoBuffer = new Uint8Array(TCP_INFO_BYTES);
const tcpInfoLength = new Uint32Array(1);

/** TCP_INFO of a connected socket, or undefined when the call fails or the kernel's struct is too short. */
export function tcpInfo(fd: number): TcpInfo | undefined {
  tcpInfoLength[0] = TCP_INFO_BYTES;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, tcpInfoBuffer, tcpInfoLength) < 0 || tcpInfoLength[0]! < 160) return undefined;
  const view = new DataView(tcpInfoBuffer.buffer);
  return {
    state: view.getUint8(0),
    atoUs: view.getUint32(12, true),
    rttUs: view.getUint32(68, true),
    segsOut: view.getUint32(136, true),
    segsIn: view.getUint32(140, true),
    dataSegsOut: view.getUint32(156, true),
  };
}

// --- Readiness: epoll and poll on many descriptors (lab 05), with their constants from <sys/epoll.h>
// and <poll.h>. On Linux the readiness bits of the two interfaces are the same numbers
// (EPOLLIN == POLLIN, EPOLLRDHUP == POLLRDHUP, ...), so one set of names serves both.

/** Creates an epoll instance (itself a file descriptor) with flags such as EPOLL_CLOEXEC. */
export const epoll_create1: (flags: number) => number = libc.func('int epoll_create1(int flags)');
/** Adds, modifies or removes `fd` in the interest list; `event` is one struct epoll_event (see `epollEventLayout`). */
export const epoll_ctl: (epfd: number, op: number, fd: number, event: Uint8Array | null) => number = libc.func(
  'int epoll_ctl(int epfd, int op, int fd, void *event)',
);
/** Fills `events` with up to `maxEvents` ready entries; returns how many, 0 on timeout, or -1. */
export const epoll_wait: (epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number) => number = libc.func(
  'int epoll_wait(int epfd, void *events, int maxevents, int timeout)',
);

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
/** Always reported, never asked for: an error on the socket (a reset, for one). */
export const EPOLLERR = 0x008;
/** Always reported, never asked for: both directions are shut (the peer reset, or FIN both ways). */
export const EPOLLHUP = 0x010;
/** The peer shut down its sending side (its FIN arrived): a half-close, told apart from "bytes to read". */
export const EPOLLRDHUP = 0x2000;
/** Edge-triggered: report a change of readiness once, rather than the state on every epoll_wait. Bit 31. */
export const EPOLLET = 0x80000000;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
/** poll(2)'s name for EPOLLRDHUP (with _GNU_SOURCE in C). */
export const POLLRDHUP = 0x2000;

/**
 * Where the fields of struct epoll_event { uint32_t events; epoll_data_t data; } lie. The kernel
 * declares it packed on x86-64 only (for the 32-bit compatibility layer), so there it is 12 bytes
 * with the 64-bit `data` at offset 4; on arm64 `data` is aligned: 16 bytes, `data` at offset 8.
 * Undefined on any other architecture, whose layout this file does not know.
 */
export function epollEventLayout(arch: string = process.arch): { readonly size: number; readonly dataOffset: number } | undefined {
  if (arch === 'x64') return { size: 12, dataOffset: 4 };
  if (arch === 'arm64') return { size: 16, dataOffset: 8 };
  return undefined;
}

// --- Files (the files protocol's send path in labs 01 and 05, shared/file-send.ts).

/**
 * Copies up to `count` bytes from file `inFd` at `*offset` to socket `outFd` inside the kernel:
 * no copy into the process. Advances `*offset` (one int64, a BigInt64Array) by what it sent and
 * leaves the file's own position alone. On a non-blocking socket it sends what fits (a short
 * count) or fails with EAGAIN; 0 means `*offset` is at the end of the file.
 */
export const sendfile: (outFd: number, inFd: number, offset: BigInt64Array, count: number) => number = libc.func(
  'intptr_t sendfile(int out_fd, int in_fd, void *offset, size_t count)',
);
/** read() at `offset` without moving the file position; 0 at the end of the file. */
export const pread: (fd: number, buffer: Uint8Array, count: number, offset: number) => number = libc.func(
  'intptr_t pread(int fd, void *buffer, size_t count, int64_t offset)',
);
/**
 * A pipe: `fds[0]` its read end, `fds[1]` its write end (an Int32Array of two). Lab 07's
 * `--copy splice` moves a file through one: SPLICE needs a pipe on one side of every move.
 */
export const pipe2: (fds: Int32Array, flags: number) => number = libc.func('int pipe2(void *fds, int flags)');
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
/**
 * Advice about a file's pages; returns 0 or an errno (not -1). POSIX_FADV_DONTNEED drops the
 * file's clean pages from the page cache, no root needed: how the files experiment makes a file
 * cold (the next read must come from the disk).
 */
export const posix_fadvise: (fd: number, offset: number, length: number, advice: number) => number = libc.func(
  'int posix_fadvise(int fd, int64_t offset, int64_t length, int advice)',
);
export const POSIX_FADV_DONTNEED = 4;
/**
 * Which pages of a mapping are in memory: one byte per page into `vector`, its low bit set for a
 * resident page. On a file mapped with mmap, that is which of its pages the page cache holds.
 */
export const mincore: (address: unknown, length: number, vector: Uint8Array) => number = libc.func(
  'int mincore(void *address, size_t length, void *vector)',
);

// --- Completion: io_uring (lab 07), called as raw system calls, and the memory calls its rings need.
// glibc has no wrapper for the three io_uring calls (liburing is a separate library, and the lab
// does without it), so they go through syscall(2) with their numbers, the same on x86-64 and
// arm64 (425-427: new system calls get one number on every architecture). syscall() is variadic;
// each use is declared here with its own fixed prototype, which on x86-64 and arm64 Linux passes
// integer and pointer arguments in the same registers a variadic call would.

export const SYS_io_uring_setup = 425;
export const SYS_io_uring_enter = 426;
export const SYS_io_uring_register = 427;

/** io_uring_setup(entries, params): a ring's descriptor; `params` (struct io_uring_params, 120 bytes) is filled in. */
export const io_uring_setup: (nr: number, entries: number, params: Uint8Array) => number = libc.func(
  'long syscall(long nr, uint32_t entries, void *params)',
);
/**
 * io_uring_enter(fd, to_submit, min_complete, flags, arg, argsz): submits up to `to_submit`
 * queued entries and, with IORING_ENTER_GETEVENTS, waits until `min_complete` completions are
 * there (`arg`: struct io_uring_getevents_arg with IORING_ENTER_EXT_ARG, bounding the wait).
 */
export const io_uring_enter: (
  nr: number,
  fd: number,
  toSubmit: number,
  minComplete: number,
  flags: number,
  arg: Uint8Array | null,
  argSize: number,
) => number = libc.func('long syscall(long nr, int fd, uint32_t to_submit, uint32_t min_complete, uint32_t flags, void *arg, size_t argsz)');
/** io_uring_register(fd, opcode, arg, nr_args): e.g. IORING_REGISTER_PBUF_RING with a struct io_uring_buf_reg. */
export const io_uring_register: (nr: number, fd: number, opcode: number, arg: Uint8Array, count: number) => number = libc.func(
  'long syscall(long nr, int fd, uint32_t opcode, void *arg, uint32_t nr_args)',
);
/**
 * Maps `length` bytes: a ring's shared memory (a ring descriptor and an IORING_OFF_* offset), or
 * anonymous memory (fd -1) for buffers the kernel keeps the address of. Returns an opaque pointer
 * (`koffi.view` turns it into an ArrayBuffer on the same bytes, `pointerAddress` into a number),
 * or MAP_FAILED (the address -1).
 */
export const mmap: (address: null, length: number, prot: number, flags: number, fd: number, offset: number) => unknown = libc.func(
  'void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)',
);
export const munmap: (address: unknown, length: number) => number = libc.func('int munmap(void *addr, size_t length)');
/** The peer's address of a connected socket (a multishot accept does not give it). */
export const getpeername: (fd: number, address: Uint8Array, length: Uint32Array) => number = libc.func(
  'int getpeername(int fd, void *address, void *length)',
);

/** The bytes behind a pointer mmap() returned, without a copy; valid until munmap(). */
export const viewPointer = (pointer: unknown, length: number): ArrayBuffer => koffi.view(pointer, length);
/** A pointer's address as a number (user-space addresses fit in 53 bits on x86-64 and arm64). */
export const pointerAddress = (pointer: unknown): number => Number(koffi.address(pointer));
/** mmap()'s failure value, (void *) -1. */
export const isMapFailed = (pointer: unknown): boolean => pointer === null || koffi.address(pointer) === 0xffffffffffffffffn;

export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
/** Fault the pages in at once: the rings are touched on every loop turn. */
export const MAP_POPULATE = 0x8000;
export const ENOSYS = code('ENOSYS');
export const EPERM = code('EPERM');
export const EINVAL = code('EINVAL');
export const ETIME = code('ETIME');
export const ECANCELED = code('ECANCELED');
export const ENOENT = code('ENOENT');
export const EALREADY = code('EALREADY');
/** Report one event, then disable the registration until EPOLL_CTL_MOD re-arms it (lab 05's --trigger oneshot). Bit 30. */
export const EPOLLONESHOT = 0x40000000;
/**
 * select(2) (lab 05's --mux select): `readFds` and `writeFds` are fd_set bitmaps of FD_SETSIZE
 * bits (bit N of word N/32 is descriptor N), rewritten by the kernel to the ready ones; `timeout`
 * is a struct timeval { long tv_sec; long tv_usec; }. Descriptors at or over FD_SETSIZE do not fit.
 */
export const select: (nfds: number, readFds: Uint32Array, writeFds: Uint32Array, exceptFds: null, timeout: BigInt64Array) => number = libc.func(
  'int select(int nfds, void *readfds, void *writefds, void *exceptfds, void *timeout)',
);
/** The size of glibc's fd_set, fixed when glibc was compiled: select() cannot watch a descriptor this high. */
export const FD_SETSIZE = 1024;

// --- The sandbox (shared/sandbox.ts): no_new_privs and a seccomp filter, and the number of the
// seccomp system call, which glibc has no wrapper for (317 on x86-64, 277 on arm64: an old call,
// numbered per architecture).

/** prctl(option, arg2, ...): here only PR_SET_NO_NEW_PRIVS and PR_GET_SECCOMP. */
export const prctl: (option: number, arg2: number, arg3: number, arg4: number, arg5: number) => number = libc.func(
  'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
);
/** seccomp(operation, flags, args) through syscall(2); `args` is a struct sock_fprog. */
export const seccomp: (nr: number, operation: number, flags: number, args: Uint8Array) => number = libc.func(
  'long syscall(long nr, unsigned int operation, unsigned int flags, void *args)',
);
export const SYS_seccomp: Readonly<Record<string, number>> = { x64: 317, arm64: 277 };
/** No exec from here on can gain privileges (setuid bits, file capabilities): a filter needs it without CAP_SYS_ADMIN. */
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_SECCOMP = 21;
export const EFAULT = code('EFAULT');
/** sendto(2): one datagram to `address` (sd_notify's AF_UNIX socket, shared/notify.ts). */
export const sendto: (fd: number, buffer: Uint8Array, count: number, flags: number, address: Uint8Array, length: number) => number = libc.func(
  'intptr_t sendto(int fd, void *buffer, size_t count, int flags, void *address, uint32_t length)',
);
export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;

// --- Processes (exercise 02's TypeScript skeleton). Node cannot fork() itself through koffi (the
// child crashes on the way back from the call: koffi's call path and Node's threads do not survive
// a fork), so a child process is started the way a threaded program must: posix_spawn(3), which
// is fork() and exec() in one call, made safe by the C library. Its children are this process's
// own, outside libuv: nobody reaps them unless the program calls waitpid().

/**
 * Starts `argv[0]`, found on PATH, as a child: `actions` (posix_spawn_file_actions_t, set up with
 * the calls below) rearranges its descriptors first. `pid` receives its pid; returns 0 or an errno
 * value (not -1). `argv` and `envp` end with null, as in C.
 */
export const posix_spawnp: (pid: [number], file: string, actions: Uint8Array, attributes: null, argv: (string | null)[], envp: (string | null)[]) => number =
  libc.func('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attributes, const char **argv, const char **envp)');
/** posix_spawn_file_actions_t is opaque (80 bytes in glibc on x86-64 and arm64): this many bytes hold it. */
export const SPAWN_FILE_ACTIONS_BYTES = 128;
export const posix_spawn_file_actions_init: (actions: Uint8Array) => number = libc.func('int posix_spawn_file_actions_init(void *actions)');
/** In the child, before it runs: dup2(fd, newFd). */
export const posix_spawn_file_actions_adddup2: (actions: Uint8Array, fd: number, newFd: number) => number = libc.func(
  'int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)',
);
export const posix_spawn_file_actions_destroy: (actions: Uint8Array) => number = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
/**
 * Waits for a child to change state (`pid` -1: any child) and reaps it: its pid, 0 with WNOHANG
 * when none has exited yet, or -1 (ECHILD: no child left). `status` receives the wait status.
 */
export const waitpid: (pid: number, status: [number] | null, options: number) => number = libc.func('int waitpid(int pid, _Out_ int *status, int options)');
export const WNOHANG = 1;
