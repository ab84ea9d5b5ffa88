/**
 * The file-range send path for the labs that make their own system calls with a descriptor per
 * write (01 and 05, through the kit's outbox, kit/outbox.ts): a file range onto a non-blocking
 * socket, as far as the kernel takes it now. The lab waits for room its own way (lab 01: poll()
 * on the one client; lab 05: EPOLLOUT) and calls again.
 *
 * `--copy` picks how the bytes move:
 *   sendfile    sendfile(2): the kernel copies from the page cache into the socket itself. No
 *               byte enters the process; one call per send buffer's worth (a short count when
 *               the buffer fills, then EAGAIN).
 *   read-write  what a server without sendfile does (and what Node does for labs 02-06, see
 *               shared/file-stream.ts): pread(2) a chunk into a buffer of ours (copy 1, kernel to
 *               user), write(2) it to the socket (copy 2, user to kernel). Two calls per chunk.
 *
 * Memory: sendfile holds nothing; read-write holds one chunk per response in progress, however
 * slowly the client reads.
 */

import type { FileBody } from './file-open.js';

type Libc = typeof import('./libc.js');

export type CopyMode = 'sendfile' | 'read-write';
export const COPY_MODES: readonly CopyMode[] = ['sendfile', 'read-write'];

/** What a lab that offers `--copy` adds to its options (the flag itself: shared/copy-flags.ts). */
export interface CopyOptions {
  readonly copy: CopyMode;
}

/** read-write: bytes per pread, the size of lab 05's socket reads (and Node's fs streams). */
const CHUNK_BYTES = 64 * 1024;

/** What one call left: all sent, waiting for room, or the connection must end (and why). */
export type SendState = { readonly done: true } | { readonly done: false; readonly failure: string | undefined };
const DONE: SendState = { done: true };
const AGAIN: SendState = { done: false, failure: undefined };
const fail = (failure: string): SendState => ({ done: false, failure });
/** The file shrank after its size went into Content-Length: the response cannot be finished. */
export const TRUNCATED = 'file truncated while being sent';

/** One response's file range in flight on a socket, sent by `--copy`. */
export class FileTransfer {
  readonly body: FileBody;
  readonly #libc: Libc;
  readonly #mode: CopyMode;
  /** sendfile: the file offset the kernel reads from and advances. */
  readonly #offset = new BigInt64Array(1);
  /** read-write: one chunk, and the part of it read but not yet written. */
  #buffer: Buffer | undefined;
  #unsent: Buffer | undefined;

  constructor(libc: Libc, mode: CopyMode, body: FileBody) {
    this.#libc = libc;
    this.#mode = mode;
    this.body = body;
  }

  /** Sends until done or EAGAIN; `onSent(n)` hears every count written to the socket. */
  send(socketFd: number, onSent: (bytes: number) => void): SendState {
    return this.#mode === 'sendfile' ? this.#sendfile(socketFd, onSent) : this.#readWrite(socketFd, onSent);
  }

  #sendfile(socketFd: number, onSent: (bytes: number) => void): SendState {
    const libc = this.#libc;
    const body = this.body;
    this.#offset[0] = BigInt(body.position);
    while (body.remaining > 0) {
      const n = libc.sendfile(socketFd, body.fd, this.#offset, body.remaining);
      if (n > 0) {
        body.position += n;
        body.remaining -= n;
        onSent(n);
        continue;
      }
      if (n === 0) return fail(TRUNCATED);
      const error = libc.errno();
      if (error === libc.EAGAIN) return AGAIN;
      if (error !== libc.EINTR) return fail(libc.errnoName(error));
    }
    return DONE;
  }

  #readWrite(socketFd: number, onSent: (bytes: number) => void): SendState {
    const libc = this.#libc;
    const body = this.body;
    while (body.remaining > 0) {
      if (!this.#unsent || this.#unsent.length === 0) {
        this.#buffer ??= Buffer.allocUnsafe(Math.min(CHUNK_BYTES, body.remaining));
        const n = libc.pread(body.fd, this.#buffer, Math.min(this.#buffer.length, body.remaining), body.position);
        if (n === 0) return fail(TRUNCATED);
        if (n < 0) {
          const error = libc.errno();
          if (error === libc.EINTR) continue;
          return fail(`pread: ${libc.errnoName(error)}`);
        }
        body.position += n;
        this.#unsent = this.#buffer.subarray(0, n);
      }
      const unsent = this.#unsent;
      const n = libc.write(socketFd, unsent, unsent.length);
      if (n > 0) {
        body.remaining -= n;
        this.#unsent = unsent.subarray(n);
        onSent(n);
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) return AGAIN;
      if (error !== libc.EINTR) return fail(libc.errnoName(error));
    }
    return DONE;
  }
}
