/**
 * The lab registry: what each lab is, written once. The Makefile (through `labs/run.ts`), the
 * tests, the benchmark and every experiment read this list; nothing else names a lab. Adding a lab
 * is one entry here plus its folder.
 *
 * This file is data only: importing it loads no lab (no FFI, no worker pool), so the harness and
 * the tests can read it cheaply. A lab's own `server.ts` takes its identity from here too.
 */

import path from 'node:path';
import type { LabInfo, LabVariant } from '../shared/lab.js';
import type { ProtocolName } from '../shared/conversation.js';

// The types live beside the lab contract (shared/lab.ts), which shared/ reads too; re-exported for harnesses.
export type { LabInfo, LabTraits, LabVariant } from '../shared/lab.js';

const PLAIN: readonly LabVariant[] = [{ name: '', args: [] }];
/** The echo and its HTTP/1.1 form: what a new lab serves first. */
const ECHO_AND_HTTP: readonly ProtocolName[] = ['echo', 'http'];
/**
 * ...and the chat room (shared/chat.ts, shared/room.ts), kept the way each lab's model allows,
 * and static files (shared/files.ts), sent the way each lab moves bytes.
 */
const EVERY_PROTOCOL: readonly ProtocolName[] = [...ECHO_AND_HTTP, 'chat', 'files'];
/** The labs that make their own system calls choose how a file reaches the socket (shared/file-send.ts). */
const COPIES: readonly LabVariant[] = [
  { name: 'sendfile', args: ['--copy', 'sendfile'] },
  { name: 'read-write', args: ['--copy', 'read-write'] },
];

/**
 * The files protocol's lookup (shared/file-open.ts): realpath(3) walks the path with readlink and
 * stat calls (and, for a path that ends in `/`, checks it with faccessat2: glibc's own test that it
 * names a directory), then open, fstat, and /proc/self/fd/N read back; a Range request seeks.
 */
const FILE_LOOKUP = ['openat', 'newfstatat', 'statx', 'readlink', 'lseek', 'faccessat', 'faccessat2'];
/** Labs that send files by hand: sendfile(2), or pread(2) and write with --copy read-write. */
const FILE_BY_HAND = [...FILE_LOOKUP, 'sendfile', 'pread64'];
/** Labs on net.Socket stream the file with fs.read at a position (pread64), on libuv's pool. */
const FILE_STREAM = [...FILE_LOOKUP, 'pread64'];
/**
 * A new worker thread's start-up reads its script and the modules it imports, as the process did
 * at start: a pool that replaces a failed thread needs these after listening (lab 03). uname: a
 * worker's start-up asks for the OS (node::os::GetOSInformation), and a worker that starts after
 * the filter went on, as the pool's may on a busy machine, aborted the whole process without it
 * (an assertion in Node, seen 2 times in 12 sandboxed starts under load). epoll_create1, pipe2,
 * eventfd2: the thread's own event loop; capget and the four get*id: Node's check, per thread,
 * that the process runs with no more privilege than its user's (strace -f of lab 08, whose
 * threads per connection all start after the filter).
 */
const THREAD_START = [
  'openat', 'newfstatat', 'statx', 'readlink', 'pread64', 'lseek', 'getcwd', 'sigaltstack', 'uname',
  'epoll_create1', 'pipe2', 'eventfd2', 'capget', 'getuid', 'geteuid', 'getgid', 'getegid',
];

export const LABS: readonly LabInfo[] = [
  {
    id: '01-serial',
    label: '01 serial',
    model: 'serial, one client at a time; the rest wait in the kernel backlog',
    limit: 'serves one connection at a time: the others wait in the kernel accept queue until it closes',
    acceptedWait: 'the server had accepted the connection, and the echo still waited for its turn',
    traits: { children: false, pool: false, kernelQueueOnly: true },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    makeVariables: {},
    variants: PLAIN,
    fileCopies: COPIES,
    // poll: it waits for one socket at a time (ppoll on arm64, which has no poll).
    sandbox: { calls: ['accept4', 'poll', 'ppoll'], files: FILE_BY_HAND },
  },
  {
    id: '02-process-per-connection',
    label: '02 process/conn',
    model: 'process per connection, one forked child per client',
    limit: 'each connection costs a whole Node process, so the lab caps its children at its default --max-conns and closes connections beyond it',
    acceptedWait: 'the parent had accepted the connection, and the echo waited for the child process started for that client',
    traits: { children: true, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: { maxConns: 100 },
    makeVariables: {},
    variants: PLAIN,
    // The widest list: the parent forks and execs a whole Node process per client, so the filter
    // must allow everything a Node start-up calls (and the child inherits the filter). execve
    // stays allowed: any code in the parent can start a program, which no other model permits.
    // A child, once started, narrows its own filter to `child`: its socket, and the IPC channel it
    // received the socket on and sends room lines up; no execve, no fork's plumbing, no start-up.
    sandbox: {
      calls: [
        'accept4', 'recvfrom', 'getpeername', 'getsockname', 'getsockopt', 'socketpair', 'sendmsg', 'recvmsg', 'pipe2', 'dup2',
        'clone', 'clone3', 'execve', 'wait4', 'kill', 'setsid', 'prlimit64',
        // a child's own, narrower filter (below): filters only ever add refusals, so allowing
        // seccomp gives nothing away
        'seccomp',
        // a child's start-up: the loader, libc, V8 and Node finding their files and their machine
        'arch_prctl', 'set_tid_address', 'access', 'openat', 'newfstatat', 'statx', 'readlink', 'pread64', 'getdents64', 'getcwd',
        'getuid', 'geteuid', 'getgid', 'getegid', 'capget', 'uname', 'sysinfo', 'pkey_alloc', 'epoll_create1', 'eventfd2', 'sigaltstack',
      ],
      files: FILE_STREAM,
      // openat: a child opens a file now and then after narrowing its filter, at moments that vary
      // (under --sandbox-deny kill the kernel's audit log named openat as what killed children
      // that had run for under a second; likely glibc reading /sys/devices/system/cpu/online when
      // a thread first needs a malloc arena of its own). With EPERM that open fails harmlessly.
      child: ['recvmsg', 'sendmsg', 'recvfrom', 'getpeername', 'getsockname', 'getsockopt', 'openat'],
    },
  },
  {
    id: '03-worker-pool',
    label: '03 worker pool',
    model: 'worker pool, one I/O thread + piscina workers',
    acceptedWait: 'the main thread had accepted the connection, and the echo waited for a worker (the pool queue) or for the main thread',
    traits: { children: false, pool: true, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    coresFlag: '--threads',
    makeVariables: { THREADS: '--threads' },
    variants: PLAIN,
    sandbox: { calls: ['accept4', 'getpeername', ...THREAD_START], files: FILE_STREAM },
  },
  {
    id: '04-evented',
    label: '04 evented',
    model: 'evented, one thread, epoll via libuv',
    acceptedWait: 'the event loop had accepted the connection, and the echo waited for the loop to get to it',
    traits: { children: false, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    makeVariables: {},
    variants: PLAIN,
    sandbox: { calls: ['accept4', 'getpeername'], files: FILE_STREAM },
  },
  {
    id: '05-event-loop',
    label: '05 event loop',
    model: 'event loop by hand: one thread calls epoll, poll or select itself; epoll level-, edge-triggered or oneshot',
    acceptedWait: 'the loop had accepted the connection, and the echo waited for the loop to get to it among the sockets ready in the same wake-up',
    traits: { children: false, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    makeVariables: { MUX: '--mux', TRIGGER: '--trigger' },
    variants: [
      { name: 'epoll, level', args: ['--mux', 'epoll', '--trigger', 'level'] },
      { name: 'epoll, edge', args: ['--mux', 'epoll', '--trigger', 'edge'] },
      { name: 'poll', args: ['--mux', 'poll'] },
    ],
    fileCopies: COPIES,
    // Each --mux's wait: epoll_wait (epoll_pwait on arm64, and in NODE_RUNTIME), poll (ppoll),
    // select (pselect6 on arm64).
    // getsockopt: SO_ERROR, to name the error behind an EPOLLERR.
    sandbox: { calls: ['accept4', 'epoll_wait', 'poll', 'ppoll', 'select', 'pselect6', 'getsockopt'], files: FILE_BY_HAND },
  },
  {
    id: '06-loop-per-core',
    label: '06 loop per core',
    model: 'one event loop per core, each on a worker thread and serving as lab 04 does; --balance decides who gets each client',
    limit: 'a loop is one thread: a slow request stalls the clients of its loop, and no policy moves them to an idle one',
    acceptedWait: 'the connection had been accepted (by the acceptor or by a loop), and the echo waited for its loop to get to it',
    // Its workers are threads, not child processes: there is no child to kill (robust case 10).
    traits: { children: false, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    coresFlag: '--workers',
    makeVariables: { WORKERS: '--workers', BALANCE: '--balance' },
    variants: [
      { name: 'handoff', args: ['--balance', 'handoff'] },
      { name: 'shared', args: ['--balance', 'shared'], acceptOnly: true },
      { name: 'reuseport', args: ['--balance', 'reuseport'], acceptOnly: true },
    ],
    // dup: the acceptor hands a copy of each descriptor to a loop (handoff).
    sandbox: { calls: ['accept4', 'dup', 'getpeername', 'getsockname', 'getsockopt'], files: FILE_STREAM },
  },
  {
    id: '07-completion',
    label: '07 completion',
    model: 'completion by hand: one thread hands whole operations to the kernel through io_uring and reaps their completions',
    acceptedWait: 'the loop had accepted the connection, and the echo waited for the loop to reap its receive completion among the others of the same wake-up',
    traits: { children: false, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    defaults: {},
    makeVariables: { SUBMIT: '--submit', RECV: '--recv' },
    needs: 'io_uring',
    // Three, not the eight combinations: the default (both batching knobs on), both off (the
    // costliest way: a system call per entry, a re-armed RECV per completion), and the kernel
    // thread on top of the default. Each variant runs the whole robust suite.
    variants: [
      { name: 'batch, multishot', args: ['--submit', 'batch', '--recv', 'multishot'] },
      { name: 'each, single', args: ['--submit', 'each', '--recv', 'single'] },
      { name: 'sqpoll', args: ['--sqpoll'] },
    ],
    // Its ring's own ways (labs/07-completion/file-slot.ts): a READ into its buffer then a SEND, or SPLICE through a pipe.
    fileCopies: [
      { name: 'read-send', args: ['--copy', 'read-send'] },
      { name: 'splice', args: ['--copy', 'splice'] },
    ],
    // io_uring_enter only: no io_uring_setup (no new, unrestricted ring after listening) and no
    // io_uring_register (the ring's restrictions are final). accept4 drains the clients still
    // queued at shutdown, to close them.
    // files: the file is opened, stat'ed and read by ring entries, which no filter sees (the
    // ring's own restrictions allow them only with a root); what remains are the lookup's
    // synchronous checks (realpath, the readlink of /proc/self/fd), the time zone V8 reads at the
    // first Last-Modified (openat, newfstatat, lseek of /etc/localtime), and, for splice, the pipe.
    sandbox: { calls: ['io_uring_enter', 'getpeername', 'accept4'], files: ['openat', 'newfstatat', 'lseek', 'readlink', 'faccessat', 'faccessat2', 'pipe2'] },
  },
  {
    id: '08-threads',
    label: '08 threads',
    model: 'a thread per connection blocking in read and write, or a prethreaded pool blocking in accept',
    limit: 'each connection holds a thread with a V8 isolate of its own (megabytes and milliseconds each), so the lab caps its threads at its default --max-conns; a pool serves as many clients at once as it has threads, and the rest wait in the kernel accept queue',
    acceptedWait: 'the connection had been accepted, and the echo waited for a thread: a new one starting for it (per connection), or a pool thread done with its last client (prethreaded)',
    traits: { children: false, pool: false, kernelQueueOnly: false },
    protocols: EVERY_PROTOCOL,
    // Each thread is a Node isolate, about 8 MB: 100 of them are most of a gigabyte.
    defaults: { maxConns: 100 },
    makeVariables: { THREADS: '--threads' },
    variants: [
      { name: 'per-connection', args: ['--threads', 'per-connection'], threadPerConnection: true },
      // Six: more than the robust suite's largest room holds at once (five members), and few
      // enough for its case 8 (a 64-descriptor limit; each thread holds five).
      // Once accepted, a connection is served by the same code (thread.ts) as per connection.
      { name: 'prethreaded', args: ['--threads', '6'], servedAtOnce: 6, acceptOnly: true },
    ],
    fileCopies: COPIES,
    // accept4: blocking, in the accepting threads; poll: before turning a client away (kit/accept.ts);
    // setsockopt: the receive and send timeouts; shutdown: waking a thread asleep on a socket.
    // Per connection, a new thread starts after listening: THREAD_START.
    // recvfrom: a peek at a client before a thread is started for it. sendto: a reply's first
    // write, send(MSG_DONTWAIT), takes what the kernel takes without waiting (thread.ts).
    // getdents64: the acceptor counts the open descriptors (/proc/self/fd) before it starts a thread.
    sandbox: { calls: ['accept4', 'poll', 'ppoll', 'setsockopt', 'shutdown', 'getpeername', 'recvfrom', 'sendto', 'getdents64', ...THREAD_START], files: FILE_BY_HAND },
  },
];

/** The lab with this id; throws on an unknown one (a bug: ids come from this list). */
export function labInfo(id: string): LabInfo {
  const found = LABS.find((lab) => lab.id === id);
  if (!found) throw new Error(`no lab ${id} in labs/index.ts`);
  return found;
}

/**
 * Finds a lab from what a user types: its full id, or its number ("04", "4"). Undefined when
 * nothing matches.
 */
export function findLab(name: string): LabInfo | undefined {
  const number = /^\d+$/.test(name) ? name.padStart(2, '0') : undefined;
  return LABS.find((lab) => lab.id === name || (number !== undefined && lab.id.startsWith(`${number}-`)));
}

/** Every (lab, variant) pair: what a suite that runs "every lab in every configuration" iterates. */
export function labVariants(filter: (lab: LabInfo) => boolean = () => true): { lab: LabInfo; variant: LabVariant; title: string }[] {
  return LABS.filter(filter).flatMap((lab) =>
    lab.variants.map((variant) => ({ lab, variant, title: variant.name ? `${lab.id} (${variant.name})` : lab.id })),
  );
}

/** The compiled entry of a lab, relative to the repository root. */
export function labEntryPath(id: string): string {
  return path.join('dist', 'labs', id, 'main.js');
}
