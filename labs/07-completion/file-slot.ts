/**
 * One client's file operations on the ring, as SendSlot (ring.ts) is its SENDs: the files
 * protocol's lookup and its range, each step an entry whose completion queues the next, one in
 * flight at a time. Nothing here waits for the disk: the loop queues a step and goes on with
 * every other client; the kernel reads the file (at once from the page cache, or from the disk
 * while the loop runs) and posts the completion.
 *
 *   the lookup   the shared rules (shared/file-open.ts `jobSteps`) ask for a real path to be
 *                opened and stat'ed: an OPENAT (O_NOFOLLOW, O_NONBLOCK, as every lab opens), then
 *                a STATX of what it opened (AT_EMPTY_PATH); the rules are resumed with the result
 *                and decide (`decideFile`). Their realpath(3) and the readlink of /proc/self/fd
 *                run synchronously, on metadata (io_uring has no readlink; see file-open.ts).
 *   read-send    a READ of the next 64 KiB of the file into a pool buffer (after the response's
 *                head, for the first), handed to the client's SendSlot as one SEND: two copies,
 *                kernel to our buffer and back, as read/write makes them, but no call of ours.
 *   splice       a SPLICE from the file into the client's pipe (the page-cache pages move by
 *                reference), then a SPLICE from the pipe into the socket; the socket is
 *                non-blocking, so a full one ends the second SPLICE with EAGAIN, and a POLL_ADD
 *                for POLLOUT waits for room (a SPLICE is done by a kernel worker that cannot
 *                wait on a socket, unlike a SEND, which the kernel re-polls itself).
 *
 * The slot moves the client's outbox (shared/kit/outbox.ts) while it holds a file: the answer's
 * head joins it, read bytes leave it as a SEND, a range leaves it once sent; the server only
 * hears whether to carry on, wait, or fail the connection (`FileStep`).
 *
 * The memory the kernel holds (the path OPENAT reads, the statx buffer, a READ's buffer) is a
 * pool block, back in the pool only when the completion has come.
 */

import { closeSync } from 'node:fs';
import type { FileJob } from '../../shared/conversation.js';
import { decideFile, type FileAnswer, type FileBody, type Found, jobSteps, OPEN_FLAGS, type Opened } from '../../shared/file-open.js';
import { TRUNCATED } from '../../shared/file-send.js';
import type { Libc } from '../../shared/listener.js';
import type { Logger } from '../../shared/log.js';
import { type FileRange, isFileJob, isFileRange, type Outbox } from '../../shared/kit/outbox.js';
import { type Block, type BufferPool, type Completion, OP, type Ring, type RingCopy, type SendSlot } from './ring.js';

/** openat's "relative to the working directory": the rules hand us absolute real paths anyway. */
const AT_FDCWD = -100;
/** statx: the path is empty, the descriptor itself is stat'ed. */
const AT_EMPTY_PATH = 0x1000;
/** statx mask: the type and mode, the size and the modification time are all the rules ask. */
const STATX_TYPE = 0x1;
const STATX_MODE = 0x2;
const STATX_MTIME = 0x40;
const STATX_SIZE = 0x200;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** In the lookup's block: the NUL-terminated path from 0, the statx buffer (256 bytes) at 4096, an empty path after it. */
const PATH_MAX = 4096;
const STATX_AT = PATH_MAX;
const EMPTY_PATH_AT = STATX_AT + 256;
/** What one SPLICE into the pipe moves at most: a pipe's default capacity (16 pages), the size of a READ. */
const PIPE_BYTES = 64 * 1024;
const POLLOUT = 0x004;
const EAGAIN = 11;
const ENAMETOOLONG = 36;

/**
 * What a step of the slot came to: `wait` for the completion of what it queued (a step that
 * failed the connection, through its `fail`, waits too), or `moved` (the outbox moved on).
 */
type FileStep = 'wait' | 'moved';

/** What the slot needs of its client: the kit's connection (shared/kit/connection.ts) and its SENDs. */
export interface FileClient {
  /** The client's socket and id (every entry's user_data names it). */
  readonly fd: number;
  readonly id: number;
  readonly record: { readonly peer: string };
  readonly outbox: Outbox;
  readonly sending: SendSlot;
  /** `bytes` went into the socket (a SPLICE's). */
  wrote(bytes: number): void;
  /** The connection ends, with `reason` in its disconnect line. */
  fail(reason: string): void;
}

/** The server's part after a step: the outbox's next step, the close it waited for, reading again. */
export type CarryOn = () => void;

interface FileSlotSetup {
  readonly libc: Libc;
  readonly ring: Ring;
  readonly pool: BufferPool;
  readonly copy: RingCopy;
  readonly root: string;
  readonly log: Logger;
}

export class FileSlot {
  /** An operation of the slot is in flight: nothing else of it may be queued until it completes. */
  inFlight = false;
  readonly #setup: FileSlotSetup;
  readonly #client: FileClient;
  readonly #carryOn: CarryOn;
  #job: FileJob | undefined;
  #steps: Generator<string, Found, Opened> | undefined;
  /** The lookup's block (path and statx buffer), or read-send's READ buffer, while the kernel holds it. */
  #block: Block | undefined;
  /** read-send: bytes of the block before the file's (the response's head). */
  #headBytes = 0;
  /** The descriptor an OPENAT gave, until its STATX has completed. */
  #opened = -1;
  /** splice: the client's pipe (read end, write end), made at its first file request, and the bytes in it. */
  #pipe: Int32Array | undefined;
  #inPipe = 0;
  /** The range being moved, and which of its two SPLICEs (or the POLL_ADD between) is in flight. */
  #range: FileBody | undefined;
  #stage: 'into pipe' | 'into socket' | 'waiting for room' | undefined;
  /** read-send: the range the READ in flight reads. */
  #reading: FileRange | undefined;

  constructor(
    libc: Libc,
    ring: Ring,
    pool: BufferPool,
    options: { readonly ringCopy: RingCopy; readonly protocol: { readonly root?: string }; readonly log: Logger },
    client: FileClient,
    carryOn: CarryOn,
  ) {
    this.#setup = { libc, ring, pool, copy: options.ringCopy, root: options.protocol.root ?? '', log: options.log };
    this.#client = client;
    this.#carryOn = carryOn;
  }

  /**
   * The outbox's next step while it holds a file (nothing of the slot's or a SEND in flight): a
   * file request's lookup (answered at once when its path alone is refused), a range's next
   * SPLICE, or the bytes at its head copied into a send buffer for one SEND, with read-send a
   * READ of the range behind them filling the rest of that buffer first. When the step needed
   * no entry (a request refused by its path alone), the server carries on at once.
   */
  next(): void {
    if (this.#next() === 'moved') this.#carryOn();
  }

  #next(): FileStep {
    const { pool } = this.#setup;
    const { outbox, sending } = this.#client;
    const head = outbox.items[0];
    if (isFileJob(head)) {
      const answer = this.#lookUp(head);
      return answer ? this.#answered(answer) : 'wait';
    }
    if (isFileRange(head) && this.#setup.copy === 'splice') {
      this.#splice(head.body);
      return 'wait';
    }
    const block = pool.take();
    const length = outbox.takeBytes(block.bytes);
    const range = outbox.items[0];
    if (isFileRange(range) && this.#setup.copy === 'read-send' && length < block.bytes.length) this.#read(range, block, length);
    else if (length > 0) sending.send(block, length);
    else pool.give(block);
    return 'wait';
  }

  #lookUp(job: FileJob): FileAnswer | undefined {
    this.#job = job;
    if (!job.refused && this.#setup.copy === 'splice' && !this.#pipe) {
      const problem = this.#makePipe();
      // Out of descriptors (or memory) for the pipe is the server's trouble, as for the file: 503.
      if (problem) return this.#decide({ facts: { kind: 'unavailable', reason: `pipe: ${problem}` }, fd: -1 });
    }
    this.#steps = jobSteps(job, this.#setup.root);
    return this.#rule(this.#steps.next());
  }

  /** The answer joins the outbox in the request's place: its head, then its range. */
  #answered(answer: FileAnswer): FileStep {
    this.#client.outbox.answered(answer, (body) => ({ body }));
    return 'moved';
  }

  /** read-send: a READ of `range`'s next bytes into `block`, after the `headBytes` already in it. */
  #read(range: FileRange, block: Block, headBytes: number): void {
    const body = range.body;
    this.#reading = range;
    this.#block = block;
    this.#headBytes = headBytes;
    const length = Math.min(body.remaining, block.bytes.length - headBytes);
    this.#queue({ op: OP.READ, fd: body.fd, address: block.address + headBytes, length, offset: body.position });
  }

  /** splice: the range's next bytes into the socket, through the pipe (what is in the pipe first). */
  #splice(body: FileBody): void {
    this.#range = body;
    if (this.#inPipe > 0) {
      this.#spliceOut();
      return;
    }
    this.#stage = 'into pipe';
    const pipe = this.#pipe!;
    this.#queue({ op: OP.SPLICE, fd: pipe[1]!, fdIn: body.fd, address: body.position, offset: -1, length: Math.min(body.remaining, PIPE_BYTES) });
  }

  /**
   * A completion of the slot's operation. `abandoned`: the client has failed, so what the
   * operation gave is let go (a descriptor closed, a buffer back in the pool) and nothing follows.
   */
  completed(completion: Completion, abandoned: boolean): void {
    this.#completed(completion, abandoned);
    // Whatever the step came to, the server carries on: a step that waits has something in
    // flight, which its next step waits for anyway; a failed client is closed once idle.
    this.#carryOn();
  }

  #completed({ op, res }: Completion, abandoned: boolean): FileStep {
    this.inFlight = false;
    const { libc } = this.#setup;
    if (abandoned) {
      this.#letGo(op, res);
      return 'wait';
    }
    switch (op) {
      case OP.OPENAT:
        if (res < 0) return this.#resume({ error: libc.errnoName(-res) });
        this.#opened = res;
        // sqe.addr: the empty path; sqe.len: the mask; sqe.off: the statx buffer.
        this.#queue({
          op: OP.STATX,
          fd: res,
          address: this.#block!.address + EMPTY_PATH_AT,
          length: STATX_TYPE | STATX_MODE | STATX_MTIME | STATX_SIZE,
          offset: this.#block!.address + STATX_AT,
          opFlags: AT_EMPTY_PATH,
        });
        return 'wait';
      case OP.STATX: {
        const fd = this.#opened;
        this.#opened = -1;
        if (res < 0) {
          closeSync(fd);
          return this.#resume({ error: libc.errnoName(-res) });
        }
        return this.#resume({ fd, stat: readStatx(this.#block!.bytes.subarray(STATX_AT, STATX_AT + 256)) });
      }
      case OP.READ:
        return this.#readDone(res);
      case OP.SPLICE:
        return this.#stage === 'into pipe' ? this.#intoPipeDone(res) : this.#intoSocketDone(res);
      case OP.POLL_ADD:
        // Room in the socket (or an error, which the SPLICE will name): the SPLICE again.
        this.#spliceOut();
        return 'wait';
      default:
        return 'wait';
    }
  }

  /** The client is gone: its pipe is closed and the lookup's block is back (nothing is in flight by now). */
  release(): void {
    if (this.#pipe) {
      this.#setup.libc.close(this.#pipe[0]!);
      this.#setup.libc.close(this.#pipe[1]!);
      this.#pipe = undefined;
    }
    this.#giveBlock();
  }

  // --- The lookup ---------------------------------------------------------------------------------

  /** The rules' next step: decided, or a path to open, queued as an OPENAT. */
  #rule(step: IteratorResult<string, Found>): FileAnswer | undefined {
    if (step.done) return this.#decide(step.value);
    const path = Buffer.from(`${step.value}\0`);
    if (path.length > PATH_MAX) return this.#rule(this.#steps!.next({ error: this.#setup.libc.errnoName(ENAMETOOLONG) }));
    this.#block ??= this.#setup.pool.take();
    this.#block.bytes.set(path, 0);
    this.#block.bytes[EMPTY_PATH_AT] = 0;
    // sqe.fd: the directory a relative path starts from; sqe.addr: the path; sqe.len: the mode; open_flags in the flags word.
    this.#queue({ op: OP.OPENAT, fd: AT_FDCWD, address: this.#block.address, length: 0, opFlags: OPEN_FLAGS | this.#setup.libc.O_CLOEXEC });
    return undefined;
  }

  #resume(opened: Opened): FileStep {
    const answer = this.#rule(this.#steps!.next(opened));
    return answer ? this.#answered(answer) : 'wait';
  }

  #decide(found: Found): FileAnswer {
    const { log } = this.#setup;
    const { peer } = this.#client.record;
    const job = this.#job!;
    this.#job = undefined;
    this.#steps = undefined;
    this.#giveBlock();
    return decideFile(job, found, peer, log);
  }

  // --- The range ----------------------------------------------------------------------------------

  #readDone(res: number): FileStep {
    const range = this.#reading!;
    if (res === -EAGAIN) {
      this.#read(range, this.#block!, this.#headBytes);
      return 'wait';
    }
    if (res <= 0) {
      this.#giveBlock();
      return this.#fail(res === 0 ? TRUNCATED : `read: ${this.#setup.libc.errnoName(-res)}`);
    }
    const { outbox, sending } = this.#client;
    range.body.position += res;
    range.body.remaining -= res;
    // The file's bytes are queued in our buffer now, as a reply's are, until their SEND completes.
    outbox.pending += res;
    if (range.body.remaining === 0) outbox.rangeSent();
    sending.send(this.#block!, this.#headBytes + res);
    this.#block = undefined;
    this.#reading = undefined;
    return 'wait';
  }

  #intoPipeDone(res: number): FileStep {
    if (res <= 0) return this.#fail(res === 0 ? TRUNCATED : `splice: ${this.#setup.libc.errnoName(-res)}`);
    this.#range!.position += res;
    this.#inPipe = res;
    this.#spliceOut();
    return 'wait';
  }

  #intoSocketDone(res: number): FileStep {
    if (res === -EAGAIN) {
      // The socket is full: wait for room the readiness way, then the SPLICE again.
      this.#stage = 'waiting for room';
      this.#queue({ op: OP.POLL_ADD, fd: this.#client.fd, opFlags: POLLOUT });
      return 'wait';
    }
    if (res < 0) return this.#fail(this.#setup.libc.errnoName(-res));
    this.#inPipe -= res;
    this.#range!.remaining -= res;
    this.#client.wrote(res);
    if (this.#range!.remaining === 0) this.#client.outbox.rangeSent();
    return 'moved';
  }

  #spliceOut(): void {
    this.#stage = 'into socket';
    const pipe = this.#pipe!;
    this.#queue({ op: OP.SPLICE, fd: this.#client.fd, fdIn: pipe[0]!, address: -1, offset: -1, length: this.#inPipe });
  }

  #makePipe(): string | undefined {
    const { libc } = this.#setup;
    const pipe = new Int32Array(2);
    // Non-blocking, so no SPLICE can park a kernel worker on it; it is only ever spliced into when empty.
    if (libc.pipe2(pipe, libc.O_CLOEXEC | libc.O_NONBLOCK) < 0) return libc.errnoName(libc.errno());
    this.#pipe = pipe;
    return undefined;
  }

  // --- Plumbing -----------------------------------------------------------------------------------

  /** The range cannot be finished (a file truncated under it, a failed read or send): the connection ends. */
  #fail(reason: string): FileStep {
    this.#client.fail(reason);
    return 'wait';
  }

  #queue(entry: Omit<Parameters<Ring['queue']>[0], 'id'>): void {
    this.inFlight = true;
    this.#setup.ring.queue({ ...entry, id: this.#client.id });
  }

  /** An abandoned client's operation completed: what it gave back is let go. */
  #letGo(op: number, res: number): void {
    if (op === OP.OPENAT && res >= 0) closeSync(res);
    if (op === OP.STATX && this.#opened >= 0) closeSync(this.#opened);
    this.#opened = -1;
    this.#steps = undefined;
    this.#job = undefined;
    this.#reading = undefined;
    this.#giveBlock();
  }

  #giveBlock(): void {
    if (this.#block) this.#setup.pool.give(this.#block);
    this.#block = undefined;
  }
}

/** The fields the rules ask of a struct statx: stx_mode (u16 at 28), stx_size (u64 at 40), stx_mtime (s64 seconds at 112, u32 nanoseconds at 120). */
function readStatx(statx: Buffer): { kind: 'file' | 'directory' | 'other'; size: number; mtimeMs: number } {
  const mode = statx.readUInt16LE(28) & S_IFMT;
  const size = Number(statx.readBigUInt64LE(40));
  const mtimeMs = Number(statx.readBigInt64LE(112)) * 1000 + statx.readUInt32LE(120) / 1e6;
  return { kind: mode === S_IFREG ? 'file' : mode === S_IFDIR ? 'directory' : 'other', size, mtimeMs };
}
