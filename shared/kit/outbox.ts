/**
 * One client's outgoing queue, for the labs that make their own system calls: bytes, file
 * requests whose turn has not come yet, and the file range being sent, oldest first. Lab 05 writes
 * it at EPOLLOUT, lab 01 after each read, lab 07 copies it into SEND buffers and moves its file
 * ranges with ring entries; the queue and its accounting are the same.
 *
 * Accounting, as Node counts a socket's writableLength, so --max-pending means what it means in
 * labs 02-04: `pending` is the bytes queued and not yet taken by the kernel. A file is looked up
 * (and its descriptor opened) only when its turn comes, so a client that pipelines a thousand
 * requests and does not read holds a thousand small records, not a thousand descriptors.
 *
 * Bytes handed in may be a view of the lab's read buffer, which the next read overwrites: the
 * lab tries to send them at once, and `keep()` copies whatever of them still waits.
 */

import type { FileJob } from '../conversation.js';
import type { FileAnswer, FileBody } from '../file-open.js';
import { closeBody } from '../file-open.js';
import { type CopyMode, FileTransfer } from '../file-send.js';

type Libc = typeof import('../libc.js');

/** A file range being sent, the lab's own way (FileTransfer for labs 01 and 05); its descriptor is closed when it leaves. */
export interface FileRange {
  readonly body: FileBody;
}

export type Outgoing = Uint8Array | FileJob | FileRange;

/** What writing onto a descriptor needs from its connection. */
export interface FlushIO {
  readonly libc: Libc;
  readonly copy: CopyMode;
  /** A file's turn came: look it up (shared/file-open.ts `answerFile`). */
  open(job: FileJob): FileAnswer;
  /** `bytes` went to the kernel. */
  sent(bytes: number): void;
  /**
   * Bytes go by send(2) with these flags instead of write(2): MSG_DONTWAIT lets a thread whose
   * socket blocks (lab 08) write what the kernel takes now without sleeping. 0: write(2).
   */
  sendFlags?: number;
}

export class Outbox {
  readonly items: Outgoing[] = [];
  /** Bytes queued (or in flight, for lab 07 until its SEND completes) and not yet taken by the kernel. */
  pending = 0;
  /** File items (a request not yet looked up, or a range being sent): while there is one, the client is not read. */
  files = 0;
  /** How much of `items[0]` (bytes) is written already. */
  offset = 0;
  /** The last push went into an empty outbox as it was, and may be a view of a read buffer (see keep). */
  #borrowed = false;

  get empty(): boolean {
    return this.items.length === 0;
  }

  /**
   * Bytes join the queue. `shared`: bytes nobody will change (a room's line, one Buffer for every
   * member), kept as they are. Others may be a view of the lab's read buffer: behind bytes already
   * waiting they are copied now; into an empty outbox they go as they are, for the lab to send at
   * once, and `keep()` copies what of them it could not.
   */
  push(bytes: Uint8Array, shared: boolean): void {
    const alone = this.items.length === 0;
    this.items.push(shared || alone ? bytes : Uint8Array.prototype.slice.call(bytes));
    this.pending += bytes.length;
    this.#borrowed = !shared && alone;
  }

  pushFile(job: FileJob): void {
    this.items.push(job);
    this.files++;
  }

  /** After the lab sent what it could of the last push into an empty outbox: what is left of it is copied. */
  keep(): void {
    if (this.#borrowed && this.items.length === 1) {
      const rest = this.items[0]!;
      if (rest instanceof Uint8Array) this.items[0] = Uint8Array.prototype.slice.call(rest);
    }
    this.#borrowed = false;
  }

  /**
   * Writes what the kernel takes now onto the non-blocking socket `fd`: bytes by write(2), a
   * file's head and then its range by --copy (shared/file-send.ts). Stops when all is sent or the
   * kernel says EAGAIN; returns why the connection must fail, or undefined. On a blocking socket
   * (lab 08) each call sleeps until the kernel takes its bytes, or its send timeout says EAGAIN.
   */
  flushTo(fd: number, io: FlushIO): string | undefined {
    const libc = io.libc;
    const items = this.items;
    while (items.length > 0) {
      const head = items[0]!;
      if (head instanceof FileTransfer) {
        const state = head.send(fd, io.sent);
        if (!state.done && state.failure === undefined) return undefined;
        if (!state.done) {
          closeBody(head.body);
          return state.failure;
        }
        this.rangeSent();
        continue;
      }
      if (!(head instanceof Uint8Array)) {
        this.answered(io.open(head as FileJob), (body) => new FileTransfer(libc, io.copy, body));
        continue;
      }
      const chunk = this.offset === 0 ? head : head.subarray(this.offset);
      const n = io.sendFlags ? libc.send(fd, chunk, chunk.length, io.sendFlags) : libc.write(fd, chunk, chunk.length);
      if (n < 0) {
        const error = libc.errno();
        if (error === libc.EAGAIN) return undefined;
        if (error === libc.EINTR) continue;
        // EPIPE or ECONNRESET: the client is gone. Node ignores SIGPIPE, so this is an errno, not death.
        return libc.errnoName(error);
      }
      io.sent(n);
      if (n < chunk.length) {
        this.offset += n;
        continue;
      }
      items.shift();
      this.pending -= head.length;
      this.offset = 0;
    }
    return undefined;
  }

  /** The file request at the head had its turn: its head's bytes take its place, and its range (made by `range`) follows them. */
  answered(answer: FileAnswer, range: (body: FileBody) => FileRange): void {
    this.items[0] = answer.head;
    this.pending += answer.head.length;
    if (answer.body) this.items.splice(1, 0, range(answer.body));
    else this.files--;
  }

  /** The file range at the head is sent: it leaves, and its descriptor is closed. */
  rangeSent(): void {
    const range = this.items.shift() as FileRange;
    closeBody(range.body);
    this.files--;
  }

  /** Lab 07: copies up to `into.length` queued bytes into `into`, up to the first file; returns how many. */
  takeBytes(into: Uint8Array): number {
    let length = 0;
    const items = this.items;
    while (items.length > 0 && length < into.length) {
      const head = items[0]!;
      if (!(head instanceof Uint8Array)) break;
      const take = Math.min(head.length, into.length - length);
      into.set(take === head.length ? head : head.subarray(0, take), length);
      length += take;
      if (take === head.length) items.shift();
      else items[0] = head.subarray(take);
    }
    return length;
  }

  /** Everything is dropped (the connection failed or closed): file descriptors are closed. */
  drop(): void {
    for (const item of this.items) if (isFileRange(item)) closeBody(item.body);
    this.items.length = 0;
    this.pending = 0;
    this.files = 0;
    this.offset = 0;
  }
}

export function isFileRange(item: Outgoing | undefined): item is FileRange {
  return item !== undefined && !(item instanceof Uint8Array) && 'body' in item;
}

export function isFileJob(item: Outgoing | undefined): item is FileJob {
  return item !== undefined && !(item instanceof Uint8Array) && 'kind' in item;
}
