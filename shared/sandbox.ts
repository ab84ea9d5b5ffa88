/**
 * `--sandbox`: once a lab listens, it gives up every system call its model does not need. A
 * seccomp-bpf filter, built here by hand, is a small program the kernel runs on every system call
 * of the process: it checks the architecture, then the call's number against the lab's allow-list
 * (Node's own calls, below, plus the model's, from labs/index.ts), and returns ALLOW, or EPERM
 * (the call fails, the lab goes on) or KILL (the whole process dies at once), chosen by flag.
 *
 * Three things this teaches, each a catch:
 *   - A filter belongs to a thread, and is inherited only by threads and processes created after
 *     it. Node has 7 to 11 threads by then (V8's platform workers, libuv's pool, worker threads in
 *     labs 03 and 06), so a filter installed by the main thread alone leaves them all unfiltered:
 *     SECCOMP_FILTER_FLAG_TSYNC installs it on every thread of the process at once, or fails.
 *   - no_new_privs first: without CAP_SYS_ADMIN the kernel accepts a filter only from a thread that
 *     can never gain privileges again (no setuid exec that would run under a filter it did not expect).
 *   - The filter sees numbers and register values, never the memory they point at: it can refuse
 *     openat(), not openat() of one path. Paths are the job of the lab's own root check (files),
 *     or of a mount namespace or Landlock (the systemd unit's ProtectSystem does the former).
 *     And io_uring operations are not system calls: lab 07 restricts its ring separately.
 *
 * Simplification: the filter only allows or denies by number. A real service would also check
 * arguments where it can (socket(AF_UNIX only), clone without CLONE_NEWUSER), as Docker's profile does.
 */

import { readFileSync } from 'node:fs';
import type { ProtocolName } from './conversation.js';
import type { Deny, LabInfo } from './lab.js';
import { UserError } from './errors.js';
import { isSyscallName, syscallNumber, type SyscallArch } from './syscall-numbers.js';

type Libc = typeof import('./libc.js');

/** What the filter does to a call that is not on the list. */
export type { Deny };
export const DENIES: readonly Deny[] = ['eperm', 'kill'];

/**
 * The calls any Node process makes once it runs, whatever it serves: measured under load in every
 * lab (make harden), plus those a run may not show but Node needs sooner or later (a new thread,
 * memory given back, a timer, exit). Without these the runtime itself breaks, not the model.
 */
export const NODE_RUNTIME: readonly string[] = [
  // memory: V8's heap and its garbage collector, malloc
  'mmap', 'munmap', 'mprotect', 'madvise', 'mremap', 'brk',
  // threads: libuv's pool starts lazily; a thread's start and end; locks and waits
  'futex', 'clone', 'clone3', 'set_robust_list', 'rseq', 'exit', 'sched_yield', 'sched_getaffinity', 'gettid', 'prctl',
  // the event loop: epoll, the eventfd that wakes it, and descriptors
  'epoll_pwait', 'epoll_wait', 'epoll_ctl', 'read', 'write', 'close', 'fcntl', 'fstat', 'ioctl',
  // signals (SIGTERM's handler, a thread's mask) and a call they interrupted
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'restart_syscall', 'getpid', 'tgkill',
  // time (the vDSO answers most clock reads without a call), randomness, log lines flushed, exit
  'clock_gettime', 'clock_nanosleep', 'nanosleep', 'getrandom', 'fsync', 'exit_group',
  // every lab's accepted sockets: options (TCP_NODELAY), a half-close
  'setsockopt', 'shutdown',
];

/** Everything `lab` may call once it listens with `protocol`: Node's calls, the model's, and the files protocol's. */
export function allowList(lab: Pick<LabInfo, 'sandbox'>, protocol: ProtocolName): string[] {
  return [...new Set([...NODE_RUNTIME, ...lab.sandbox.calls, ...(protocol === 'files' ? lab.sandbox.files : [])])];
}

/**
 * What a child process of `lab` keeps once it runs (labs/index.ts `sandbox.child`): Node's calls,
 * the child's own, and the files protocol's. Filters stack, and the kernel applies the strictest
 * answer of all, so a child that installs this list can no longer make the calls its parent's
 * list allowed for starting it (execve above all). Undefined for a lab without children.
 */
export function childAllowList(lab: Pick<LabInfo, 'sandbox'>, { protocol }: { readonly protocol: ProtocolName }): string[] | undefined {
  const child = lab.sandbox.child;
  return child && [...new Set([...NODE_RUNTIME, ...child, ...(protocol === 'files' ? lab.sandbox.files : [])])];
}

// --- Classic BPF, from <linux/filter.h> and <linux/seccomp.h>.

const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS: load a 32-bit word of struct seccomp_data
const BPF_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_RET_K = 0x06; // BPF_RET | BPF_K
/** struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; } */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_TSYNC = 1;
/** <linux/audit.h>: the architecture the call was made for. A process may call in another's ABI. */
const AUDIT_ARCH: Record<SyscallArch, number> = { x64: 0xc000003e, arm64: 0xc00000b7 };
/** x86-64's x32 ABI: the same numbers with this bit set, a second door a filter must close. */
const X32_SYSCALL_BIT = 0x40000000;
const INSTRUCTION_BYTES = 8; // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }

const EPERM = 1;

function instruction(out: DataView, index: number, code: number, jt: number, jf: number, k: number): void {
  out.setUint16(index * INSTRUCTION_BYTES, code, true);
  out.setUint8(index * INSTRUCTION_BYTES + 2, jt);
  out.setUint8(index * INSTRUCTION_BYTES + 3, jf);
  out.setUint32(index * INSTRUCTION_BYTES + 4, k >>> 0, true);
}

/**
 * The filter program for `numbers` on `arch`, as the kernel reads it (an array of struct
 * sock_filter, native byte order, little-endian on both architectures):
 *   0  load the architecture;  1  the expected one? skip 2;  2  KILL (a foreign ABI)
 *   3  load the call number;  (x86-64: 4 an x32 number? 5 deny)
 *   then for each allowed number: equal? fall through to ALLOW, else skip it;  last: deny.
 * Two instructions per call keeps every jump short (a jump offset is one byte), at the cost of a
 * linear scan: a few dozen comparisons per system call, nanoseconds next to the call itself.
 */
export function buildFilter(numbers: readonly number[], arch: SyscallArch, deny: Deny): Uint8Array {
  const denyReturn = deny === 'kill' ? SECCOMP_RET_KILL_PROCESS : SECCOMP_RET_ERRNO | EPERM;
  const unique = [...new Set(numbers)].sort((a, b) => a - b);
  const head = arch === 'x64' ? 6 : 4;
  const length = head + unique.length * 2 + 1;
  const bytes = new Uint8Array(length * INSTRUCTION_BYTES);
  const out = new DataView(bytes.buffer);
  instruction(out, 0, BPF_LD_W_ABS, 0, 0, OFFSET_ARCH);
  instruction(out, 1, BPF_JEQ_K, 1, 0, AUDIT_ARCH[arch]);
  instruction(out, 2, BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
  instruction(out, 3, BPF_LD_W_ABS, 0, 0, OFFSET_NR);
  if (arch === 'x64') {
    instruction(out, 4, BPF_JGE_K, 0, 1, X32_SYSCALL_BIT);
    instruction(out, 5, BPF_RET_K, 0, 0, denyReturn);
  }
  unique.forEach((number, i) => {
    instruction(out, head + i * 2, BPF_JEQ_K, 0, 1, number);
    instruction(out, head + i * 2 + 1, BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW);
  });
  instruction(out, length - 1, BPF_RET_K, 0, 0, denyReturn);
  return bytes;
}

/** The architecture this process runs on, if the filter knows its numbers. */
export function sandboxArch(arch: string = process.arch): SyscallArch | undefined {
  return arch === 'x64' || arch === 'arm64' ? arch : undefined;
}

/** Why a sandbox cannot be installed here, as one line, or undefined when it can. */
export function sandboxUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'seccomp is Linux only';
  if (!sandboxArch()) return `the seccomp filter knows the system call numbers of x64 and arm64 only, not ${process.arch}`;
  let actions: string;
  try {
    actions = readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8');
  } catch {
    return 'this kernel has no seccomp filters (no /proc/sys/kernel/seccomp/actions_avail: CONFIG_SECCOMP_FILTER is off)';
  }
  const missing = ['allow', 'errno', 'kill_process'].filter((action) => !actions.split(/\s+/).includes(action));
  return missing.length ? `this kernel's seccomp lacks the ${missing.join(', ')} action` : undefined;
}

/** What `installSandbox` put in place, for the listening line and the report. */
export interface Installed {
  /** Calls allowed on this architecture (names with no number here are left out). */
  readonly allowed: number;
  readonly deny: Deny;
}

/**
 * Sets no_new_privs and installs the filter allowing `names` on every thread of this process
 * (TSYNC; without it, on the calling thread alone). Threads and child processes created later inherit it. Throws a UserError in one line
 * when the kernel refuses; a name that is no system call at all is a bug in the list.
 */
export async function installSandbox(names: readonly string[], deny: Deny, { tsync = true } = {}): Promise<Installed> {
  const unavailable = sandboxUnavailable();
  if (unavailable) throw new UserError(`--sandbox: ${unavailable}`);
  const arch = sandboxArch()!;
  const unknown = names.filter((name) => !isSyscallName(name));
  if (unknown.length) throw new Error(`not system calls: ${unknown.join(', ')} (an allow-list in labs/index.ts or shared/sandbox.ts)`);
  const numbers = names.map((name) => syscallNumber(name, arch)).filter((number): number is number => number !== undefined);
  const filter = buildFilter(numbers, arch, deny);
  const libc: Libc = await import('./libc.js');
  if (libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) !== 0) throw new UserError(`--sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed: ${libc.errnoName(libc.errno())}`);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; }: the filter's address is
  // needed as a number, so it is copied into memory of our own mapping; the kernel copies it in turn.
  const pointer = libc.mmap(null, filter.length, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
  if (libc.isMapFailed(pointer)) throw libc.callError('mmap', libc.errno());
  try {
    new Uint8Array(libc.viewPointer(pointer, filter.length)).set(filter);
    const program = new Uint8Array(16);
    const view = new DataView(program.buffer);
    view.setUint16(0, filter.length / INSTRUCTION_BYTES, true);
    view.setBigUint64(8, BigInt(libc.pointerAddress(pointer)), true);
    // tsync false exists only for make harden's demonstration of what it is for (bench/harden/refusal.ts).
    const result = libc.seccomp(libc.SYS_seccomp[arch]!, SECCOMP_SET_MODE_FILTER, tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, program);
    // With TSYNC a positive result is the id of a thread that could not take the filter (it runs
    // under another filter the new one does not extend); nothing was installed then.
    if (result > 0) throw new UserError(`--sandbox: thread ${result} could not take the filter (SECCOMP_FILTER_FLAG_TSYNC)`);
    if (result < 0) throw new UserError(`--sandbox: seccomp(SECCOMP_SET_MODE_FILTER) failed: ${libc.errnoName(libc.errno())}`);
  } finally {
    libc.munmap(pointer, filter.length);
  }
  return { allowed: new Set(numbers).size, deny };
}

/** The words the listening line adds: "sandbox: 52 calls allowed, others EPERM". */
export function sandboxNote(installed: Installed): string {
  return `sandbox: ${installed.allowed} system calls allowed, others ${installed.deny === 'kill' ? 'kill the process' : 'fail with EPERM'}`;
}
