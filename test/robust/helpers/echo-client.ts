/**
 * A test client that keeps the books on everything it sends and receives: byte counts and SHA-256
 * of both directions, and how the connection ended. The nothing-lost check reads these books: for
 * every connection that closed cleanly, the bytes echoed must equal the bytes sent.
 *
 * Unlike `test/helpers/tcp.ts` it does not keep the received bytes (unless asked), so a case can
 * stream hundreds of MiB through it, and it can switch to reading at a chosen rate or not at all.
 */

import { createHash, type Hash } from 'node:crypto';
import net from 'node:net';

const IO_TIMEOUT_MS = 30_000;

export interface EchoClientOptions {
  /** Keep every received byte in memory (for exact comparisons of small exchanges). */
  readonly keep?: boolean;
}

const openClients = new Set<EchoClient>();

export class EchoClient {
  readonly socket: net.Socket;
  readonly #sentHash: Hash = createHash('sha256');
  readonly #receivedHash: Hash = createHash('sha256');
  readonly #kept: Buffer[] | undefined;
  #sent = 0;
  #received = 0;
  #finSent = false;
  #finReceived = false;
  #error: string | undefined;
  #isClosed = false;
  readonly #waiters = new Set<() => void>();
  #readTimer: NodeJS.Timeout | undefined;
  /** Bytes the current 20 ms window still allows, once readAtRate() is on. */
  #readBudget = 0;
  #rateLimited = false;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket, options: EchoClientOptions) {
    this.socket = socket;
    this.#kept = options.keep ? [] : undefined;
    socket.on('data', (chunk: Buffer) => {
      this.#received += chunk.length;
      this.#receivedHash.update(chunk);
      this.#kept?.push(chunk);
      if (this.#rateLimited) {
        this.#readBudget -= chunk.length;
        if (this.#readBudget <= 0) socket.pause();
      }
      this.#notify();
    });
    socket.on('end', () => {
      this.#finReceived = true;
      this.#notify();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.#error = error.code ?? error.message;
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#isClosed = true;
        clearInterval(this.#readTimer);
        openClients.delete(this);
        this.#notify();
        resolve();
      }),
    );
    openClients.add(this);
  }

  static connect(port: number, options: EchoClientOptions = {}, host = '127.0.0.1'): Promise<EchoClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, allowHalfOpen: true });
      socket.setNoDelay(true);
      const client = new EchoClient(socket, options);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(client);
      });
      socket.once('error', reject);
    });
  }

  get sent(): number {
    return this.#sent;
  }
  get received(): number {
    return this.#received;
  }
  /** Every byte received, if the client was made with `keep`. */
  get receivedBytes(): Buffer {
    if (!this.#kept) throw new Error('this client does not keep what it receives');
    return Buffer.concat(this.#kept);
  }
  get error(): string | undefined {
    return this.#error;
  }
  get isClosed(): boolean {
    return this.#isClosed;
  }
  get finReceived(): boolean {
    return this.#finReceived;
  }

  /**
   * The connection ended the polite way: we sent our FIN, the server answered with its FIN, and
   * nothing went wrong. For such a connection every byte sent must have come back.
   */
  get closedCleanly(): boolean {
    return this.#finSent && this.#finReceived && this.#error === undefined;
  }

  /** Hex SHA-256 of everything sent / received so far (call once the stream is finished). */
  sentDigest(): string {
    return this.#sentHash.copy().digest('hex');
  }
  receivedDigest(): string {
    return this.#receivedHash.copy().digest('hex');
  }

  /**
   * Writes one chunk and waits while the socket's own buffer is over its high-water mark, so a
   * sender never holds more than one chunk in this process. Resolves false if the connection
   * broke before the chunk could be written.
   */
  async send(chunk: Uint8Array): Promise<boolean> {
    if (this.socket.destroyed || this.#finSent) return false;
    this.#sent += chunk.length;
    this.#sentHash.update(chunk);
    if (this.socket.write(chunk)) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        this.socket.off('drain', onDrain);
        this.socket.off('close', onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      this.socket.on('drain', onDrain);
      this.socket.on('close', onClose);
    });
  }

  /** Sends every chunk in order, stopping early if the connection breaks. True if all went out. */
  async sendAll(chunks: Iterable<Uint8Array>): Promise<boolean> {
    for (const chunk of chunks) {
      if (!(await this.send(chunk))) return false;
    }
    return true;
  }

  /** Half-closes: our FIN follows everything written. */
  end(): void {
    if (this.#finSent || this.socket.destroyed) return;
    this.#finSent = true;
    this.socket.end();
  }

  /** Resolves once `n` bytes have arrived in total; rejects if the stream ends first or on timeout. */
  async waitForReceived(n: number, timeoutMs = IO_TIMEOUT_MS): Promise<void> {
    await this.#waitUntil(() => this.#received >= n || this.#isClosed || this.#finReceived, `${n} bytes`, timeoutMs);
    if (this.#received < n) throw new Error(`connection ended after ${this.#received} of ${n} bytes (${this.#error ?? 'FIN'})`);
  }

  /** Resolves when the socket is fully closed (by either side). */
  waitForClose(timeoutMs = IO_TIMEOUT_MS): Promise<void> {
    return this.#waitUntil(() => this.#isClosed, 'the connection to close', timeoutMs);
  }

  /** Resolves at the server's FIN or when the connection closes, whichever comes first. */
  waitForEnd(timeoutMs = IO_TIMEOUT_MS): Promise<void> {
    return this.#waitUntil(() => this.#finReceived || this.#isClosed, 'the server to end the stream', timeoutMs);
  }

  /** From now on read at most `bytesPerSecond` (in 20 ms windows). */
  readAtRate(bytesPerSecond: number): void {
    clearInterval(this.#readTimer);
    this.#rateLimited = true;
    const windowMs = 20;
    const perWindow = Math.max(1, Math.round((bytesPerSecond * windowMs) / 1000));
    this.socket.pause();
    this.#readTimer = setInterval(() => {
      this.#readBudget = perWindow;
      this.socket.resume();
    }, windowMs);
  }

  /** From now on read nothing: the kernel buffers fill and the server's writes back up. */
  stopReading(): void {
    clearInterval(this.#readTimer);
    this.socket.pause();
  }

  /** Sends a TCP reset instead of a FIN (SO_LINGER 0), as a crashed or impatient client does. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  #waitUntil(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; sent ${this.#sent}, received ${this.#received}` +
              `${this.#finReceived ? ', server FIN seen' : ''}${this.#error ? `, error ${this.#error}` : ''}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

/** Destroys every EchoClient still open, for afterEach. */
export function destroyAllEchoClients(): void {
  for (const client of openClients) client.destroy();
  openClients.clear();
}
