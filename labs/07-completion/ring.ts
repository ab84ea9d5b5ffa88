/**
 * An io_uring instance by hand, as lab 05's poller.ts is epoll by hand: the three system calls
 * (through shared/libc.ts), the three shared-memory areas they set up, and the two rings' heads
 * and tails read and written in the order the kernel documents. No liburing: this file is the
 * part of liburing the lab needs, written out.
 *
 *   - The submission queue (SQ): an array of 64-byte entries (SQEs), each one whole operation
 *     (accept on this socket; receive into this buffer; send these bytes; close this descriptor),
 *     and a ring of indexes into that array. We are the producer: we fill an entry, put its index
 *     in the ring, and move the tail. The kernel consumes from the head.
 *   - The completion queue (CQ): a ring of 16-byte entries (CQEs), each the result of one
 *     operation: the 64-bit `user_data` we put in its SQE, and `res`, what the system call would
 *     have returned (bytes, a descriptor, or -errno). The kernel produces at the tail; we consume
 *     and move the head.
 *
 * Memory ordering (see io_uring(7), "Submission queue polling" and liburing's barrier.h): the
 * rings are shared with the kernel, which runs on another core (or, with SQPOLL, in a thread of
 * its own), so two stores that we make in one order could be seen in the other. The rules:
 *   - SQ tail: STORE-RELEASE, after the SQE and its ring slot are written: the kernel may read an
 *     entry as soon as it sees the new tail, so the entry's bytes must be visible first.
 *   - SQ head: LOAD-ACQUIRE, before reusing a slot: the kernel has finished reading the entries
 *     up to the head it published.
 *   - CQ tail: LOAD-ACQUIRE, before reading the entries: the kernel wrote each CQE (and the bytes
 *     of the buffer it names) before it published the tail.
 *   - CQ head: STORE-RELEASE, after we have read the entries: the kernel may overwrite a slot as
 *     soon as it sees the head move past it.
 *   - SQPOLL only: a FULL barrier between storing the SQ tail and loading the SQ flags (to see
 *     IORING_SQ_NEED_WAKEUP): otherwise we could read the flags before the tail is published,
 *     miss that the kernel thread went to sleep, and leave our entries unsubmitted.
 * JavaScript's Atomics.load and Atomics.store are sequentially consistent, which is stronger than
 * acquire and release and includes the full barrier; ordinary typed-array reads and writes have
 * no ordering at all. So every head and tail goes through Atomics, and nothing else needs to.
 *
 * The contract the server sees (as lab 05's Poller is epoll's, poll's and select's): `queue` an
 * operation for one of its ids (an Entry: opcode, descriptor, buffer, flags), `cancel` one, then
 * `submitAndWait` and `reap` completions, each naming the id and the opcode it completes. How an
 * id and an opcode travel in the 64-bit `user_data` (id * OPCODES + opcode), when entries reach
 * the kernel (`--submit each`: one io_uring_enter per entry; batch: one per loop turn) and the
 * SQPOLL thread are this file's business. The files protocol's operations (OPENAT, STATX, READ,
 * SPLICE, and POLL_ADD to wait for room after a SPLICE found none) are one line each in OP and
 * come back through the same `reap`; `FileSlot` (file-slot.ts) queues them for one client, as
 * `SendSlot` here queues its SENDs.
 *
 * Memory the kernel keeps an address of (a receive buffer while the RECV is pending, the bytes of
 * a SEND until its completion) must not move or be freed before the completion arrives. The
 * JavaScript heap moves small objects, and the garbage collector frees what nothing references,
 * so that memory comes from mmap() here, in BufferPool and BufferRing, never from the heap.
 */

import type { Libc } from '../../shared/listener.js';
import { UserError } from '../../shared/errors.js';

export type Submit = 'each' | 'batch';
export const SUBMITS: readonly Submit[] = ['each', 'batch'];
export type Recv = 'single' | 'multishot';
export const RECVS: readonly Recv[] = ['single', 'multishot'];

/**
 * How a file range reaches the socket (`--copy`): `read-send`, a READ into one of the lab's own
 * mmap'd buffers, then a SEND of it (two copies, as read/write); `splice`, a SPLICE from the file
 * into a pipe, then one from the pipe into the socket (the pages move by reference: no copy
 * through the process, the ring's sendfile).
 */
export type RingCopy = 'read-send' | 'splice';
export const RING_COPIES: readonly RingCopy[] = ['read-send', 'splice'];

/** Lab 07's own flags: how entries reach the kernel, how clients are read, how files are sent, and the bug it can show. */
export interface RingOptions {
  readonly submit: Submit;
  readonly recv: Recv;
  readonly sqpoll: boolean;
  /** True only with `--reuse-early`: a send buffer is reused before its completion (the bug, on purpose). */
  readonly reuseEarly: boolean;
  /**
   * `--copy`, named apart from labs 01 and 05's `copy` (sendfile or read-write), which the
   * by-hand kit reads for its own flush (shared/kit/connection.ts); lab 07 never calls it.
   */
  readonly ringCopy: RingCopy;
}

/**
 * Submission-ring slots. A full ring is submitted at once, so this bounds only how many entries
 * one io_uring_enter carries, not how many operations are in flight. A line said in a room of a
 * thousand is a SEND for each of the others, queued in one loop turn; 1024 slots (64 KiB) let
 * them all go to the kernel in one call.
 */
const SQ_ENTRIES = 1024;
/**
 * Completion-ring slots: every operation in flight may complete between two reaps (a RECV and a
 * SEND per client). Overflowing completions are kept by the kernel (IORING_FEAT_NODROP) and
 * flushed at the next io_uring_enter, so this is the fast path's size, not a limit.
 */
const CQ_ENTRIES = 4096;
/** With --sqpoll, the kernel thread spins this long after the last submission, then sleeps. */
const SQPOLL_IDLE_MS = 10;
/** Send (and `--recv single` receive) buffers mapped at a time when the pool runs dry: 1 MiB of address space at 64 KiB. */
const BLOCKS_PER_CHUNK = 16;
/**
 * Buffers in the provided-buffer ring (multishot): 4 MiB at 64 KiB, shared by every client. A
 * buffer is held only from its completion to the end of our handling of it, so they run out only
 * when more completions than this arrive between two reaps; the RECVs that found none end with
 * ENOBUFS and are re-armed once buffers are back.
 */
const RING_BUFFERS = 64;
const BUFFER_GROUP = 1;

/** send(2) flag: a peer that has gone gives EPIPE, never SIGPIPE. */
const MSG_NOSIGNAL = 0x4000;
/** errno EAGAIN on Linux: a SEND on a full non-blocking socket that the kernel gave up on. */
const EAGAIN = 11;

/**
 * The ring and its memory as lab 07's flags ask: SQPOLL or not, entries submitted each or in a
 * batch, restricted to the lab's own operations with --sandbox, a provided-buffer ring for
 * multishot RECV, and a pool of `blockBytes` buffers for SENDs (and single RECVs).
 */
export function openRing(
  libc: Libc,
  options: RingOptions & { readonly sandbox?: boolean; readonly protocol?: { readonly root?: string } },
  blockBytes: number,
): { ring: Ring; buffers: BufferRing | undefined; pool: BufferPool } {
  const sqpoll = options.sqpoll ? { idleMs: SQPOLL_IDLE_MS } : undefined;
  // A root to serve files from: the ring also takes the file operations (and checks the kernel has them).
  const files = options.protocol?.root !== undefined;
  const ring = new Ring(libc, { entries: SQ_ENTRIES, cqEntries: CQ_ENTRIES, sqpoll, eager: options.submit === 'each', restricted: options.sandbox, files });
  try {
    if (files) {
      const refused = refusedOperations(ring.probe(), options.ringCopy);
      if (refused) throw new UserError(refused);
    }
    const buffers = options.recv === 'multishot' ? new BufferRing(libc, ring, BUFFER_GROUP, RING_BUFFERS, blockBytes) : undefined;
    return { ring, buffers, pool: new BufferPool(libc, blockBytes, BLOCKS_PER_CHUNK) };
  } catch (error) {
    ring.close();
    throw error;
  }
}

// --- The kernel ABI, from <linux/io_uring.h> (stable: fields only ever grow at the end).

/** io_uring_setup flags. */
const IORING_SETUP_SQPOLL = 1 << 1;
const IORING_SETUP_CQSIZE = 1 << 3;
/** Keep submitting the rest of a batch when one entry fails to prepare (5.18). */
const IORING_SETUP_SUBMIT_ALL = 1 << 7;
/**
 * Completions that arrive while the thread runs in user space are posted at its next
 * io_uring_enter, not by interrupting it (5.19): one call then brings the completions of many
 * sockets at once, and the kernel sends the thread no inter-processor interrupt for each.
 */
const IORING_SETUP_COOP_TASKRUN = 1 << 8;
/** io_uring_params.features. */
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
/** Completions that do not fit the CQ are kept, not dropped (5.5): no completion is ever lost. */
const IORING_FEAT_NODROP = 1 << 1;
/** io_uring_enter takes a struct io_uring_getevents_arg, with a timeout (5.11). */
const IORING_FEAT_EXT_ARG = 1 << 8;
/** mmap() offsets of the three areas. */
const IORING_OFF_SQ_RING = 0;
const IORING_OFF_CQ_RING = 0x8000000;
const IORING_OFF_SQES = 0x10000000;
/** io_uring_enter flags. */
const IORING_ENTER_GETEVENTS = 1 << 0;
const IORING_ENTER_SQ_WAKEUP = 1 << 1;
const IORING_ENTER_SQ_WAIT = 1 << 2;
const IORING_ENTER_EXT_ARG = 1 << 3;
/** SQ ring flags: the SQPOLL thread sleeps and must be woken by io_uring_enter. */
const IORING_SQ_NEED_WAKEUP = 1 << 0;
/** The ring starts disabled: restrictions can be registered until IORING_REGISTER_ENABLE_RINGS (5.10). */
const IORING_SETUP_R_DISABLED = 1 << 6;
/** io_uring_register opcodes. */
const IORING_REGISTER_PROBE = 8;
const IORING_REGISTER_PBUF_RING = 22;
const IORING_REGISTER_RESTRICTIONS = 11;
const IORING_REGISTER_ENABLE_RINGS = 12;
/** struct io_uring_restriction.opcode: what each 16-byte entry allows. */
const IORING_RESTRICTION_REGISTER_OP = 0;
const IORING_RESTRICTION_SQE_OP = 1;
const IORING_RESTRICTION_SQE_FLAGS_ALLOWED = 2;

/** The operations the lab uses (enum io_uring_op). */
export const OP = { POLL_ADD: 6, ACCEPT: 13, ASYNC_CANCEL: 14, OPENAT: 18, CLOSE: 19, STATX: 21, READ: 22, SEND: 26, RECV: 27, SPLICE: 30 } as const;
/** The files protocol's: a restricted ring (--sandbox) allows them only with --protocol files. */
const FILE_OPS: readonly number[] = [OP.OPENAT, OP.STATX, OP.READ, OP.SPLICE, OP.POLL_ADD];
/** Each file operation's name and the kernel that brought it, for the line that says one is refused. */
const FILE_OP_NAMES: Readonly<Record<number, string>> = {
  [OP.OPENAT]: 'IORING_OP_OPENAT (Linux 5.6)',
  [OP.STATX]: 'IORING_OP_STATX (5.6)',
  [OP.READ]: 'IORING_OP_READ (5.6)',
  [OP.SPLICE]: 'IORING_OP_SPLICE (5.7)',
  [OP.POLL_ADD]: 'IORING_OP_POLL_ADD (5.1)',
};
/** What each --copy needs besides the socket operations. */
const COPY_OPS: Readonly<Record<RingCopy, readonly number[]>> = {
  'read-send': [OP.OPENAT, OP.STATX, OP.READ],
  splice: [OP.OPENAT, OP.STATX, OP.SPLICE, OP.POLL_ADD],
};

/**
 * The one line that says which file operations this kernel refuses for `copy` and why, or
 * undefined when it has them all. `supported`: the opcodes IORING_REGISTER_PROBE marked supported,
 * or undefined when the kernel has no probe (before 5.6: then it has none of them).
 */
export function refusedOperations(supported: ReadonlySet<number> | undefined, copy: RingCopy): string | undefined {
  const missing = COPY_OPS[copy].filter((op) => !supported?.has(op));
  if (missing.length === 0) return undefined;
  const names = missing.map((op) => FILE_OP_NAMES[op]).join(', ');
  return supported
    ? `--protocol files --copy ${copy}: this kernel's io_uring refuses ${names} (IORING_REGISTER_PROBE says unsupported: an older kernel${copy === 'splice' ? '; try --copy read-send' : ''})`
    : `--protocol files: this kernel's io_uring has no IORING_REGISTER_PROBE (Linux 5.6), so none of ${names}`;
}
/** user_data = id * OPCODES + opcode: which of the server's ids, and which of its operations (enum io_uring_op has fewer than 256). */
const OPCODES = 256;
/** sqe.flags: the kernel picks the buffer from a provided-buffer group (sqe.buf_group). */
export const IOSQE_BUFFER_SELECT = 1 << 5;
/** sqe.ioprio for ACCEPT: one SQE accepts every connection, each a CQE with F_MORE (5.19). */
export const IORING_ACCEPT_MULTISHOT = 1 << 0;
/** sqe.ioprio for RECV: one SQE receives until it fails or the peer ends, one CQE per arrival (6.0). */
export const IORING_RECV_MULTISHOT = 1 << 1;
/** sqe.cancel_flags: cancel every request on sqe.fd, not the one whose user_data is sqe.addr (5.19). */
export const IORING_ASYNC_CANCEL_ALL = 1 << 0;
export const IORING_ASYNC_CANCEL_FD = 1 << 1;
/** cqe.flags: a buffer was picked (its id in the upper 16 bits); more CQEs follow for this SQE. */
export const IORING_CQE_F_BUFFER = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_BUFFER_SHIFT = 16;

const SQE_BYTES = 64;
const CQE_BYTES = 16;
const PARAMS_BYTES = 120;
const TWO_32 = 2 ** 32;

/** The fields of one completion, copied out of the ring before its slot is handed back. */
export interface Completion {
  /** The id the operation was queued for, and its opcode (OP). */
  id: number;
  op: number;
  res: number;
  flags: number;
  /** IORING_CQE_F_MORE: the entry stays armed, more completions follow (multishot ACCEPT and RECV). */
  more: boolean;
  /** IORING_CQE_F_BUFFER: the provided buffer the kernel picked (its id), or -1. */
  bufferId: number;
}

/** One operation to queue: an SQE, with only the fields it uses. */
export interface Entry {
  readonly op: number;
  readonly fd: number;
  /** The server's id for what it concerns (a connection, the listening socket): its completion names it. */
  readonly id: number;
  /** sqe.addr and sqe.len: a buffer's address and length (or the user_data an ASYNC_CANCEL targets). */
  readonly address?: number;
  readonly length?: number;
  /** The per-operation flags word: msg_flags, accept_flags, cancel_flags. */
  readonly opFlags?: number;
  /** sqe.ioprio: the multishot bits of ACCEPT and RECV. */
  readonly ioprio?: number;
  /** sqe.flags (IOSQE_*). */
  readonly flags?: number;
  /** sqe.buf_group, with IOSQE_BUFFER_SELECT. */
  readonly bufferGroup?: number;
  /** sqe.off: a file offset (READ, SPLICE's off_out, -1 for none), or STATX's buffer address. */
  readonly offset?: number;
  /** sqe.splice_fd_in: the descriptor SPLICE reads from (sqe.fd is the one it writes to). */
  readonly fdIn?: number;
}

export interface RingSetup {
  /** SQ slots. */
  readonly entries: number;
  readonly cqEntries: number;
  /** IORING_SETUP_SQPOLL, with the kernel thread sleeping after this many idle milliseconds. */
  readonly sqpoll?: { readonly idleMs: number };
  /** `--submit each`: every queued entry is submitted at once, one io_uring_enter each. */
  readonly eager?: boolean;
  /**
   * `--sandbox`: the ring accepts only the operations in OP, the SQE flag the lab sets and the one
   * registration it makes (its buffer ring); anything else completes with -EACCES. A seccomp filter
   * cannot do this: an operation on the ring is no system call, so a filter that refuses mkdirat or
   * sendto does not stop IORING_OP_MKDIRAT or IORING_OP_SEND (make harden shows both).
   */
  readonly restricted?: boolean;
  /** With `restricted`: the files protocol's operations (FILE_OPS) are allowed too. */
  readonly files?: boolean;
}

export class Ring {
  readonly fd: number;
  readonly sqpoll: boolean;
  readonly #eager: boolean;
  readonly #libc: Libc;
  // The SQ ring: head, tail and flags as one-element windows into the shared page, so that
  // Atomics can load and store them; `array` is the ring of indexes into the SQE array.
  readonly #sqHead: Uint32Array;
  readonly #sqTail: Uint32Array;
  readonly #sqFlags: Uint32Array;
  readonly #sqArray: Uint32Array;
  readonly #sqMask: number;
  readonly #sqEntries: number;
  /** The SQE array, as bytes, 16-bit and 32-bit words (all little-endian, like the kernel's). */
  readonly #sqe8: Uint8Array;
  readonly #sqe16: Uint16Array;
  readonly #sqe32: Uint32Array;
  readonly #cqHead: Uint32Array;
  readonly #cqTail: Uint32Array;
  readonly #cqMask: number;
  readonly #cqe32: Uint32Array;
  readonly #cqeRes: Int32Array;
  /** Our copy of the SQ tail: entries filled in but not yet published. */
  #sqLocalTail: number;
  /** Entries published but not yet passed to io_uring_enter (without SQPOLL). */
  #toSubmit = 0;
  /** struct __kernel_timespec and struct io_uring_getevents_arg, in mmap'd memory (the arg points at the timespec). */
  readonly #timespec: BigInt64Array;
  readonly #eventsArg: Uint8Array;
  /** Every io_uring_enter this ring made, for the lab's own test of --submit. */
  enters = 0;

  constructor(libc: Libc, options: RingSetup) {
    this.#libc = libc;
    const params = new Uint8Array(PARAMS_BYTES);
    const p32 = new Uint32Array(params.buffer);
    let flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    if (options.sqpoll) {
      flags |= IORING_SETUP_SQPOLL;
      p32[4] = options.sqpoll.idleMs; // sq_thread_idle
    } else {
      flags |= IORING_SETUP_COOP_TASKRUN; // the kernel refuses it with SQPOLL (EINVAL)
    }
    if (options.restricted) flags |= IORING_SETUP_R_DISABLED;
    p32[1] = options.cqEntries; // cq_entries, read because of IORING_SETUP_CQSIZE
    p32[2] = flags;
    const fd = libc.io_uring_setup(libc.SYS_io_uring_setup, options.entries, params);
    if (fd < 0) {
      const error = libc.errno();
      if (options.sqpoll && (error === libc.EPERM || error === libc.EINVAL)) {
        throw new UserError(`--sqpoll: the kernel refused IORING_SETUP_SQPOLL (${libc.errnoName(error)}); run without --sqpoll`);
      }
      throw libc.callError('io_uring_setup', error);
    }
    this.fd = fd;
    this.sqpoll = options.sqpoll !== undefined;
    this.#eager = options.eager === true;
    if (options.restricted) this.#restrict(options.files === true);
    // struct io_uring_params: sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle,
    // features, wq_fd, resv[3]; then struct io_sqring_offsets at byte 40 and io_cqring_offsets at 80.
    const sqEntries = p32[0]!;
    const cqEntries = p32[1]!;
    const features = p32[5]!;
    const sqOff = (field: number) => p32[10 + field]!; // head, tail, ring_mask, ring_entries, flags, dropped, array
    const cqOff = (field: number) => p32[20 + field]!; // head, tail, ring_mask, ring_entries, overflow, cqes, flags
    if (!(features & IORING_FEAT_SINGLE_MMAP) || !(features & IORING_FEAT_EXT_ARG)) {
      libc.close(fd);
      throw new UserError('io_uring here lacks IORING_FEAT_SINGLE_MMAP or IORING_FEAT_EXT_ARG (Linux 5.11 or later needed)');
    }
    // Both rings live in one mapping (IORING_FEAT_SINGLE_MMAP): its size is the larger of the two.
    const ringBytes = Math.max(sqOff(6) + sqEntries * 4, cqOff(5) + cqEntries * CQE_BYTES);
    const rings = this.#map(ringBytes, IORING_OFF_SQ_RING);
    const sqes = this.#map(sqEntries * SQE_BYTES, IORING_OFF_SQES);
    const word = (offset: number) => new Uint32Array(rings, offset, 1);
    this.#sqHead = word(sqOff(0));
    this.#sqTail = word(sqOff(1));
    this.#sqMask = word(sqOff(2))[0]!;
    this.#sqEntries = sqEntries;
    this.#sqFlags = word(sqOff(4));
    this.#sqArray = new Uint32Array(rings, sqOff(6), sqEntries);
    this.#cqHead = word(cqOff(0));
    this.#cqTail = word(cqOff(1));
    this.#cqMask = word(cqOff(2))[0]!;
    this.#cqe32 = new Uint32Array(rings, cqOff(5), cqEntries * 4);
    this.#cqeRes = new Int32Array(rings, cqOff(5), cqEntries * 4);
    this.#sqe8 = new Uint8Array(sqes);
    this.#sqe16 = new Uint16Array(sqes);
    this.#sqe32 = new Uint32Array(sqes);
    // Only we write the SQ tail, so our copy starts from the kernel's and stays ahead of it.
    this.#sqLocalTail = Atomics.load(this.#sqTail, 0);
    const control = new Uint8Array(this.#map(4096, 0, true));
    this.#timespec = new BigInt64Array(control.buffer, 0, 2);
    this.#eventsArg = control.subarray(16, 40);
    // io_uring_getevents_arg { u64 sigmask; u32 sigmask_sz; u32 min_wait_usec; u64 ts; }: no
    // signal mask, the timespec's address in `ts`.
    new BigUint64Array(control.buffer, 16 + 16, 1)[0] = BigInt(libc.pointerAddress(this.#controlPointer!));
  }

  #controlPointer: unknown;

  /**
   * Registers the restrictions on the still-disabled ring, then enables it. Each struct
   * io_uring_restriction is 16 bytes: u16 opcode, then the u8 it allows (a register opcode, an
   * SQE opcode or a set of SQE flags). Once enabled, the restrictions cannot be changed or lifted.
   */
  #restrict(files: boolean): void {
    const libc = this.#libc;
    const ops = Object.values(OP).filter((op) => files || !FILE_OPS.includes(op));
    const allowed: [number, number][] = [
      [IORING_RESTRICTION_REGISTER_OP, IORING_REGISTER_PBUF_RING],
      [IORING_RESTRICTION_REGISTER_OP, IORING_REGISTER_PROBE],
      ...ops.map((op): [number, number] => [IORING_RESTRICTION_SQE_OP, op]),
      [IORING_RESTRICTION_SQE_FLAGS_ALLOWED, IOSQE_BUFFER_SELECT],
    ];
    const entries = new Uint8Array(allowed.length * 16);
    const view = new DataView(entries.buffer);
    allowed.forEach(([kind, value], i) => {
      view.setUint16(i * 16, kind, true);
      view.setUint8(i * 16 + 2, value);
    });
    const register = (opcode: number, arg: Uint8Array, count: number, name: string) => {
      if (libc.io_uring_register(libc.SYS_io_uring_register, this.fd, opcode, arg, count) < 0) {
        const error = libc.errno();
        libc.close(this.fd);
        throw new UserError(`--sandbox: the kernel refused ${name} (${libc.errnoName(error)}; Linux 5.10 or later needed)`);
      }
    };
    register(IORING_REGISTER_RESTRICTIONS, entries, allowed.length, 'IORING_REGISTER_RESTRICTIONS');
    register(IORING_REGISTER_ENABLE_RINGS, new Uint8Array(0), 0, 'IORING_REGISTER_ENABLE_RINGS');
  }

  /**
   * The opcodes this kernel supports (IORING_REGISTER_PROBE, 5.6: struct io_uring_probe, 16 bytes,
   * then one struct io_uring_probe_op of 8 bytes per opcode: u8 op, u8 resv, u16 flags), or
   * undefined where there is no probe.
   */
  probe(): Set<number> | undefined {
    const libc = this.#libc;
    const count = 256;
    const probe = new Uint8Array(16 + count * 8);
    if (libc.io_uring_register(libc.SYS_io_uring_register, this.fd, IORING_REGISTER_PROBE, probe, count) < 0) return undefined;
    const IO_URING_OP_SUPPORTED = 1;
    const view = new DataView(probe.buffer);
    const supported = new Set<number>();
    for (let i = 0; i < probe[1]!; i++) if (view.getUint16(16 + i * 8 + 2, true) & IO_URING_OP_SUPPORTED) supported.add(probe[16 + i * 8]!);
    return supported;
  }

  #map(length: number, offset: number, anonymous = false): ArrayBuffer {
    const libc = this.#libc;
    const pointer = anonymous
      ? libc.mmap(null, length, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0)
      : libc.mmap(null, length, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED | libc.MAP_POPULATE, this.fd, offset);
    if (libc.isMapFailed(pointer)) throw libc.callError('mmap', libc.errno());
    if (anonymous) this.#controlPointer = pointer;
    return libc.viewPointer(pointer, length);
  }

  /** Queues one operation (with `eager`, submits it at once). Its completion names `entry.id` and `entry.op`. */
  queue(entry: Entry): void {
    const slot = this.#prepare(entry.op, entry.fd, entry.id * OPCODES + entry.op);
    if (entry.flags !== undefined) this.#setFlags(slot, entry.flags);
    if (entry.ioprio !== undefined) this.#setIoprio(slot, entry.ioprio);
    if (entry.address !== undefined) this.#setAddress(slot, entry.address, entry.length);
    if (entry.opFlags !== undefined) this.#setOpFlags(slot, entry.opFlags);
    if (entry.bufferGroup !== undefined) this.#setBufferGroup(slot, entry.bufferGroup);
    if (entry.offset !== undefined) this.#setOffset(slot, entry.offset);
    if (entry.fdIn !== undefined) this.#sqe32[slot * (SQE_BYTES / 4) + 11] = entry.fdIn >>> 0; // splice_fd_in, offset 44
    if (this.#eager) this.submit();
  }

  /** Cancels the operation `op` queued for `id` (its own completion then says -ECANCELED, or what it did). */
  cancel(id: number, op: number): void {
    this.queue({ op: OP.ASYNC_CANCEL, fd: -1, id, address: id * OPCODES + op });
  }

  /** Cancels every operation on descriptor `fd` (queued for `id`). */
  cancelAll(fd: number, id: number): void {
    this.queue({ op: OP.ASYNC_CANCEL, fd, id, opFlags: IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL });
  }

  /**
   * The next free SQE, zeroed, with its opcode, descriptor and user_data set; the caller fills
   * the rest through the set* methods with the index this returns. A full SQ is submitted first.
   */
  #prepare(opcode: number, fd: number, userData: number): number {
    // LOAD-ACQUIRE of the SQ head: the kernel is done with every slot before it.
    if (this.#sqLocalTail - Atomics.load(this.#sqHead, 0) >= this.#sqEntries) this.#makeRoom();
    const slot = this.#sqLocalTail & this.#sqMask;
    const w = slot * (SQE_BYTES / 4);
    this.#sqe32.fill(0, w, w + SQE_BYTES / 4);
    this.#sqe8[slot * SQE_BYTES] = opcode;
    this.#sqe32[w + 1] = fd >>> 0;
    this.#sqe32[w + 8] = userData % TWO_32; // user_data, offset 32
    this.#sqe32[w + 9] = Math.floor(userData / TWO_32);
    this.#sqArray[slot] = slot;
    this.#sqLocalTail = (this.#sqLocalTail + 1) >>> 0;
    return slot;
  }

  /** sqe.flags (IOSQE_*), offset 1. */
  #setFlags(slot: number, flags: number): void {
    this.#sqe8[slot * SQE_BYTES + 1] = flags;
  }
  /** sqe.ioprio, offset 2: the multishot bits of ACCEPT and RECV. */
  #setIoprio(slot: number, value: number): void {
    this.#sqe16[slot * (SQE_BYTES / 2) + 1] = value;
  }
  /**
   * sqe.addr (offset 16) and sqe.len (offset 24): a buffer, the user_data an ASYNC_CANCEL targets,
   * or SPLICE's offset into the file it reads (-1: none, a pipe).
   */
  #setAddress(slot: number, address: number, length = 0): void {
    const w = slot * (SQE_BYTES / 4);
    this.#set64(w + 4, address);
    this.#sqe32[w + 6] = length;
  }
  /** sqe.off, offset 8: a file offset (READ; SPLICE's into what it writes, -1 for a pipe or a socket), or STATX's buffer. */
  #setOffset(slot: number, offset: number): void {
    this.#set64(slot * (SQE_BYTES / 4) + 2, offset);
  }
  /** A 64-bit field as two little-endian words from word `w`; -1 is all ones (the kernel's "no offset"). */
  #set64(w: number, value: number): void {
    this.#sqe32[w] = value < 0 ? 0xffffffff : value % TWO_32;
    this.#sqe32[w + 1] = value < 0 ? 0xffffffff : Math.floor(value / TWO_32);
  }
  /** The per-operation flags word at offset 28: msg_flags, accept_flags, cancel_flags. */
  #setOpFlags(slot: number, value: number): void {
    this.#sqe32[slot * (SQE_BYTES / 4) + 7] = value >>> 0;
  }
  /** sqe.buf_group, offset 40, with IOSQE_BUFFER_SELECT. */
  #setBufferGroup(slot: number, group: number): void {
    this.#sqe16[slot * (SQE_BYTES / 2) + 20] = group;
  }

  /**
   * Publishes what prepare() filled in: STORE-RELEASE of the SQ tail, after the entries' bytes.
   * With SQPOLL that is the submission (the kernel thread is watching the tail), unless the
   * thread went to sleep; without it, the next io_uring_enter submits them.
   */
  publish(): void {
    const published = Atomics.load(this.#sqTail, 0);
    if (published === this.#sqLocalTail) return;
    Atomics.store(this.#sqTail, 0, this.#sqLocalTail);
    this.#toSubmit += (this.#sqLocalTail - published) >>> 0;
    if (!this.sqpoll) return;
    this.#toSubmit = 0;
    // The full barrier between the store above and this load is Atomics' (see the header).
    if (Atomics.load(this.#sqFlags, 0) & IORING_SQ_NEED_WAKEUP) this.#enter(0, 0, IORING_ENTER_SQ_WAKEUP, null);
  }

  /** One io_uring_enter for everything published (without SQPOLL); no waiting. */
  submit(): void {
    this.publish();
    if (this.#toSubmit > 0) this.#enter(this.#toSubmit, 0, 0, null);
  }

  /** Completions waiting in the CQ now: the kernel's tail (LOAD-ACQUIRE) minus our head. */
  ready(): number {
    return (Atomics.load(this.#cqTail, 0) - Atomics.load(this.#cqHead, 0)) >>> 0;
  }

  /**
   * Submits what is published and, when no completion is waiting yet, waits up to `timeoutMs`
   * for one: a single io_uring_enter with IORING_ENTER_GETEVENTS and a timeout (EXT_ARG), or none
   * at all when completions are already there and there is nothing to submit (or SQPOLL submits).
   */
  submitAndWait(timeoutMs: number): void {
    this.publish();
    const waiting = this.ready() > 0;
    if (waiting && this.#toSubmit === 0) return;
    if (waiting || timeoutMs === 0) {
      this.#enter(this.#toSubmit, 0, 0, null);
      return;
    }
    this.#timespec[0] = BigInt(Math.floor(timeoutMs / 1000));
    this.#timespec[1] = BigInt((timeoutMs % 1000) * 1_000_000);
    this.#enter(this.#toSubmit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, this.#eventsArg);
  }

  /**
   * Hands every waiting completion to `handle`, oldest first, then gives the slots back.
   * Returns how many there were. `handle` may prepare new entries (they are not submitted here).
   */
  reap(handle: (completion: Completion) => void): number {
    // LOAD-ACQUIRE of the CQ tail: every CQE before it (and the bytes it names) is visible.
    const tail = Atomics.load(this.#cqTail, 0);
    let head = this.#cqHead[0]!; // only we write the head
    const completion: Completion = { id: 0, op: 0, res: 0, flags: 0, more: false, bufferId: -1 };
    let count = 0;
    while (head !== tail) {
      const w = (head & this.#cqMask) * (CQE_BYTES / 4);
      const userData = this.#cqe32[w]! + this.#cqe32[w + 1]! * TWO_32;
      completion.op = userData % OPCODES;
      completion.id = (userData - completion.op) / OPCODES;
      completion.res = this.#cqeRes[w + 2]!;
      completion.flags = this.#cqe32[w + 3]!;
      completion.more = (completion.flags & IORING_CQE_F_MORE) !== 0;
      completion.bufferId = completion.flags & IORING_CQE_F_BUFFER ? completion.flags >>> IORING_CQE_BUFFER_SHIFT : -1;
      head = (head + 1) >>> 0;
      // STORE-RELEASE of the CQ head, one slot at a time: the fields are copied out, and a handler
      // that submits (--submit each) may make the kernel post more, which then finds room.
      Atomics.store(this.#cqHead, 0, head);
      count++;
      handle(completion);
    }
    return count;
  }

  close(): void {
    this.#libc.close(this.fd);
  }

  /** The SQ is full: submit it (or, with SQPOLL, wait until the kernel thread has taken some). */
  #makeRoom(): void {
    this.publish();
    if (this.sqpoll) this.#enter(0, 0, IORING_ENTER_SQ_WAIT, null);
    else this.#enter(this.#toSubmit, 0, 0, null);
  }

  #enter(toSubmit: number, minComplete: number, flags: number, arg: Uint8Array | null): void {
    const libc = this.#libc;
    this.enters++;
    const n = libc.io_uring_enter(libc.SYS_io_uring_enter, this.fd, toSubmit, minComplete, flags, arg, arg ? arg.length : 0);
    if (n >= 0) {
      this.#toSubmit = Math.max(0, this.#toSubmit - n);
      return;
    }
    const error = libc.errno();
    // ETIME: the wait's timeout ran out; EINTR: a signal (most likely our Ctrl-C); EAGAIN/EBUSY:
    // the kernel is short of room for completions: the caller reaps, then tries again.
    if (error === libc.ETIME || error === libc.EINTR || error === libc.EAGAIN || error === 16 /* EBUSY */) return;
    throw libc.callError('io_uring_enter', error);
  }
}

// --- Memory the kernel may hold: mmap'd, so it neither moves nor is freed by the garbage collector.

/** One fixed-size buffer of a BufferPool: its bytes and their address, for an SQE. */
export interface Block {
  /** A Buffer on the mapped bytes (no copy), as the protocol core takes them. */
  readonly bytes: Buffer;
  readonly address: number;
}

/**
 * Fixed-size buffers for SEND (and, with `--recv single`, RECV), mapped in chunks as needed and
 * reused. A block is taken when its operation is prepared and given back when its completion
 * arrives: between the two it belongs to the kernel.
 */
export class BufferPool {
  readonly #libc: Libc;
  readonly #blockBytes: number;
  readonly #perChunk: number;
  readonly #free: Block[] = [];

  constructor(libc: Libc, blockBytes: number, perChunk: number) {
    this.#libc = libc;
    this.#blockBytes = blockBytes;
    this.#perChunk = perChunk;
  }

  get blockBytes(): number {
    return this.#blockBytes;
  }

  take(): Block {
    if (this.#free.length === 0) this.#grow();
    return this.#free.pop()!;
  }

  give(block: Block): void {
    this.#free.push(block);
  }

  #grow(): void {
    const libc = this.#libc;
    const length = this.#blockBytes * this.#perChunk;
    // Anonymous memory costs nothing until it is touched: an idle connection's block is address space only.
    const pointer = libc.mmap(null, length, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    if (libc.isMapFailed(pointer)) throw libc.callError('mmap', libc.errno());
    const memory = libc.viewPointer(pointer, length);
    const base = libc.pointerAddress(pointer);
    // Pushed in reverse so that take() hands out the lowest address first.
    for (let i = this.#perChunk - 1; i >= 0; i--) {
      this.#free.push({ bytes: Buffer.from(memory, i * this.#blockBytes, this.#blockBytes), address: base + i * this.#blockBytes });
    }
  }
}

/**
 * One client's SENDs: one in flight at a time, from a pool buffer that is the kernel's from the
 * moment the SEND is queued until its completion arrives; a short send goes on from where it
 * stopped, from the same buffer. With `reuseEarly` (lab 07's --reuse-early, the bug on purpose)
 * the buffer goes back to the pool as soon as its SEND is queued: the next reply takes it and
 * overwrites bytes the kernel has not sent yet.
 */
export class SendSlot {
  readonly #ring: Ring;
  readonly #pool: BufferPool;
  readonly #fd: number;
  readonly #id: number;
  readonly #reuseEarly: boolean;
  #block: Block | undefined;
  #offset = 0;
  #length = 0;
  /** SENDs in flight: 0 or 1, except with reuseEarly, which does not wait. */
  inFlight = 0;

  constructor(ring: Ring, pool: BufferPool, fd: number, id: number, reuseEarly: boolean) {
    this.#ring = ring;
    this.#pool = pool;
    this.#fd = fd;
    this.#id = id;
    this.#reuseEarly = reuseEarly;
  }

  /** A send buffer filled by `fill` (it returns how many bytes it wrote), and its SEND queued; false when there was nothing to send. */
  start(fill: (into: Buffer) => number): boolean {
    const block = this.#pool.take();
    const length = fill(block.bytes);
    if (length === 0) {
      this.#pool.give(block);
      return false;
    }
    this.send(block, length);
    return true;
  }

  /** A SEND of the first `length` bytes of `block`, a pool buffer already filled (a READ put a file's bytes in it): the slot gives it back. */
  send(block: Block, length: number): void {
    this.#queue(block, 0, length);
    if (this.#reuseEarly) {
      // THE BUG, on purpose: the buffer is back in the pool while the kernel may not yet have read
      // it (the SEND is not even submitted in batch mode). The next reply takes it and overwrites it.
      this.#pool.give(block);
      this.#block = undefined;
    }
  }

  /**
   * A SEND completed. Returns the bytes it sent, once the whole buffer is sent (or with
   * reuseEarly, whatever it sent: the rest of a short send is gone from the buffer anyway);
   * 'again' when the rest (or, after EAGAIN, all of it) was queued again; -errno when it failed.
   * `failed`: the connection has failed, nothing is re-queued.
   */
  completed(res: number, failed: boolean): number | 'again' {
    this.inFlight--;
    const block = this.#block;
    if (res === -EAGAIN && !failed && block) {
      // The kernel could not send and gave up (a non-blocking socket, see lab 07's ACCEPT): again.
      this.#queue(block, this.#offset, this.#length);
      return 'again';
    }
    if (res >= 0 && !failed && block && this.#offset + res < this.#length) {
      this.#queue(block, this.#offset + res, this.#length);
      return res;
    }
    // Now, and only now, the buffer is ours again.
    if (this.inFlight === 0) this.release();
    return res;
  }

  /** The buffer goes back to the pool (the connection is done with it). */
  release(): void {
    if (this.#block) this.#pool.give(this.#block);
    this.#block = undefined;
  }

  #queue(block: Block, offset: number, length: number): void {
    this.#block = block;
    this.#offset = offset;
    this.#length = length;
    this.inFlight++;
    this.#ring.queue({ op: OP.SEND, fd: this.#fd, id: this.#id, address: block.address + offset, length: length - offset, opFlags: MSG_NOSIGNAL });
  }
}

/**
 * A provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19): buffers we lend the kernel up front,
 * from which it picks one for each multishot RECV completion, naming it in the CQE (its id in
 * cqe.flags). The ring is a third ring shared with the kernel, of struct io_uring_buf { u64 addr;
 * u32 len; u16 bid; u16 resv; }; its tail is the 16-bit word at byte 14 (over the first entry's
 * resv). We give a buffer back by writing its entry at the tail and moving the tail
 * (STORE-RELEASE, as the SQ tail). The kernel moves its own head and never tells us: a buffer it
 * picked is ours again only once we have read its completion.
 */
export class BufferRing {
  readonly group: number;
  readonly #entries: number;
  readonly #bufferBytes: number;
  readonly #ring32: Uint32Array;
  readonly #ring16: Uint16Array;
  readonly #tail: Uint16Array;
  readonly #buffers: Buffer;
  readonly #base: number;
  #localTail = 0;
  /** Buffers given back since the last publish(). */
  #returned = 0;

  constructor(libc: Libc, ring: Ring, group: number, entries: number, bufferBytes: number) {
    this.group = group;
    this.#entries = entries;
    this.#bufferBytes = bufferBytes;
    const flags = libc.PROT_READ | libc.PROT_WRITE;
    const anonymous = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS;
    const ringPointer = libc.mmap(null, entries * 16, flags, anonymous, -1, 0); // page-aligned, as the kernel requires
    const buffersPointer = libc.mmap(null, entries * bufferBytes, flags, anonymous, -1, 0);
    if (libc.isMapFailed(ringPointer) || libc.isMapFailed(buffersPointer)) throw libc.callError('mmap', libc.errno());
    const ringMemory = libc.viewPointer(ringPointer, entries * 16);
    this.#ring32 = new Uint32Array(ringMemory);
    this.#ring16 = new Uint16Array(ringMemory);
    this.#tail = new Uint16Array(ringMemory, 14, 1);
    this.#buffers = Buffer.from(libc.viewPointer(buffersPointer, entries * bufferBytes));
    this.#base = libc.pointerAddress(buffersPointer);
    // struct io_uring_buf_reg { u64 ring_addr; u32 ring_entries; u16 bgid; u16 flags; u64 resv[3]; }
    const reg = new Uint8Array(40);
    const view = new DataView(reg.buffer);
    view.setBigUint64(0, BigInt(libc.pointerAddress(ringPointer)), true);
    view.setUint32(8, entries, true);
    view.setUint16(12, group, true);
    if (libc.io_uring_register(libc.SYS_io_uring_register, ring.fd, IORING_REGISTER_PBUF_RING, reg, 1) < 0) {
      const error = libc.errno();
      if (error === libc.EINVAL) throw new UserError('--recv multishot needs IORING_REGISTER_PBUF_RING (Linux 5.19 or later); try --recv single');
      throw libc.callError('io_uring_register(PBUF_RING)', error);
    }
    for (let id = 0; id < entries; id++) this.#add(id);
    this.publish();
  }

  /** A multishot RECV on `fd` for `id`, into buffers the kernel picks from this group. */
  recv(fd: number, id: number): Entry {
    return { op: OP.RECV, fd, id, ioprio: IORING_RECV_MULTISHOT, flags: IOSQE_BUFFER_SELECT, bufferGroup: this.group };
  }

  /** The bytes the kernel put in buffer `id` (a view: read them before giving the buffer back). */
  bytes(id: number, length: number): Buffer {
    return this.#buffers.subarray(id * this.#bufferBytes, id * this.#bufferBytes + length);
  }

  /** Buffer `id` goes back to the kernel at the next publish(). */
  giveBack(id: number): void {
    this.#add(id);
    this.#returned++;
  }

  /**
   * STORE-RELEASE of the tail: the entries written since the last publish are the kernel's.
   * True when any were given back since the last call (RECVs that found none may be re-armed).
   */
  publish(): boolean {
    Atomics.store(this.#tail, 0, this.#localTail);
    const returned = this.#returned > 0;
    this.#returned = 0;
    return returned;
  }

  #add(id: number): void {
    const slot = this.#localTail & (this.#entries - 1);
    const address = this.#base + id * this.#bufferBytes;
    this.#ring32[slot * 4] = address % TWO_32;
    this.#ring32[slot * 4 + 1] = Math.floor(address / TWO_32);
    this.#ring32[slot * 4 + 2] = this.#bufferBytes;
    this.#ring16[slot * 8 + 6] = id; // bid, byte 12 of the entry; the tail (byte 14 of entry 0) is left alone
    this.#localTail = (this.#localTail + 1) & 0xffff;
  }
}
