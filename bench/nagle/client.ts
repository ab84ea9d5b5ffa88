/**
 * A TCP client made of raw system calls (through shared/libc.ts), for the Nagle experiment: each
 * `write` here is exactly one write(2) of the size asked for, and the socket options that decide
 * how those writes become segments (TCP_NODELAY, TCP_CORK, MSG_MORE) are set directly. Node's
 * net.Socket would be the wrong instrument: it batches writes itself while the kernel pushes back,
 * and has no TCP_CORK or MSG_MORE.
 *
 * Every wait is a poll() with a deadline, so a server that stops answering fails the run instead
 * of hanging it.
 */

import * as libc from '../../shared/libc.js';

const ON = new Int32Array([1]);
const OFF = new Int32Array([0]);

export class RawClient {
  readonly fd: number;
  readonly #poll = new libc.PollFd();
  readonly #readBuffer = Buffer.allocUnsafe(256 * 1024);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Connects to host:port (IPv4), non-blocking; fails after `timeoutMs`. */
  static connect(host: string, port: number, timeoutMs = 10_000): RawClient {
    const fd = libc.socket(libc.AF_INET, libc.SOCK_STREAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0);
    if (fd < 0) throw libc.callError('socket', libc.errno());
    const client = new RawClient(fd);
    if (libc.connect(fd, libc.sockaddrIn(host, port), 16) < 0) {
      const error = libc.errno();
      if (error !== libc.EINPROGRESS) {
        libc.close(fd);
        throw libc.callError('connect', error);
      }
      client.#waitFor(libc.POLLOUT, timeoutMs, 'connect');
      const soError = new Uint8Array(4);
      libc.getsockopt(fd, libc.SOL_SOCKET, libc.SO_ERROR, soError, new Uint32Array([4]));
      const value = new DataView(soError.buffer).getInt32(0, true);
      if (value !== 0) {
        libc.close(fd);
        throw libc.callError('connect', value);
      }
    }
    return client;
  }

  /** Switches a TCP-level option (TCP_NODELAY, TCP_CORK) on or off. */
  setTcpOption(option: number, on: boolean): void {
    if (libc.setsockopt(this.fd, libc.IPPROTO_TCP, option, on ? ON : OFF, 4) < 0) throw libc.callError('setsockopt', libc.errno());
  }

  /** Blocks in poll() until the socket is ready for `events`, at most `timeoutMs` in all. */
  #waitFor(events: number, timeoutMs: number, what: string): void {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${what}: no answer within ${timeoutMs} ms`);
      this.#poll.set(this.fd, events);
      const n = libc.poll(this.#poll.words, 1, Math.ceil(left));
      if (n > 0) return;
      if (n < 0 && libc.errno() !== libc.EINTR) throw libc.callError('poll', libc.errno());
    }
  }

  /**
   * One send(2) of all of `bytes` (with `flags`, e.g. MSG_MORE), waiting for room when the send
   * buffer is full. Returns the write calls made (1 unless the buffer filled up).
   */
  writeAll(bytes: Uint8Array, flags = 0, timeoutMs = 10_000): number {
    let offset = 0;
    let calls = 0;
    while (offset < bytes.length) {
      const chunk = offset === 0 ? bytes : bytes.subarray(offset);
      const n = libc.send(this.fd, chunk, chunk.length, flags);
      calls++;
      if (n >= 0) {
        offset += n;
        continue;
      }
      const error = libc.errno();
      if (error === libc.EAGAIN) this.#waitFor(libc.POLLOUT, timeoutMs, 'write');
      else if (error !== libc.EINTR) throw libc.callError('send', error);
    }
    return calls;
  }

  /** Non-blocking: reads what has arrived (0 when nothing has); -1 at the peer's FIN. */
  readAvailable(onBytes: (bytes: Buffer) => void): number {
    const n = libc.read(this.fd, this.#readBuffer, this.#readBuffer.length);
    if (n > 0) {
      onBytes(this.#readBuffer.subarray(0, n));
      return n;
    }
    if (n === 0) return -1;
    const error = libc.errno();
    if (error === libc.EAGAIN || error === libc.EINTR) return 0;
    throw libc.callError('read', error);
  }

  /** Waits until the socket is readable or writable (whichever comes first), at most `timeoutMs`. */
  waitReadableOrWritable(timeoutMs = 10_000): void {
    this.#waitFor(libc.POLLIN | libc.POLLOUT, timeoutMs, 'poll');
  }

  waitReadable(timeoutMs = 10_000): void {
    this.#waitFor(libc.POLLIN, timeoutMs, 'read');
  }

  shutdownWrite(): void {
    libc.shutdown(this.fd, libc.SHUT_WR);
  }

  info(): libc.TcpInfo | undefined {
    return libc.tcpInfo(this.fd);
  }

  close(): void {
    libc.close(this.fd);
  }
}
