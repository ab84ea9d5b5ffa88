/**
 * The checker's clients: real TCP connections to the learner's server that wait for exact bytes
 * with a bound, and say what they expected and what came instead when the bound passes. Every
 * probe a stage opens is destroyed when the stage ends, passed or failed.
 */

import net from 'node:net';

/** A stage's verdict: the mistake named, for the learner to read. */
export class StageFailure extends Error {
  override readonly name = 'StageFailure';
}

/** `bytes` as a learner reads them: printable text quoted with \n escapes, at most `max` characters shown. */
export function showBytes(bytes: Buffer, max = 40): string {
  const text = JSON.stringify(bytes.subarray(0, max).toString('latin1'));
  return bytes.length > max ? `${text.slice(0, -1)}..."` : text;
}

/** "6 bytes \"hello\\n\"" (or "0 bytes"). */
export function countedBytes(bytes: Buffer): string {
  return bytes.length === 0 ? '0 bytes' : `${bytes.length} byte${bytes.length === 1 ? '' : 's'} ${showBytes(bytes)}`;
}

export const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

export class Probe {
  readonly socket: net.Socket;
  /** The client's own port: with the server's port it names the connection in /proc/net/tcp. */
  readonly localPort: number;
  #chunks: Buffer[] = [];
  #length = 0;
  /** The server's FIN (or a reset) arrived. */
  ended = false;
  /** The connection was reset (ECONNRESET) rather than closed. */
  reset = false;
  /** Bytes before this offset were already consumed by `expect`. */
  #consumed = 0;
  readonly #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.localPort = socket.localPort ?? 0;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
      this.#notify();
    });
    socket.on('end', () => this.#end());
    socket.on('close', () => this.#end());
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') this.reset = true;
      this.#end();
    });
  }

  /** Connects to 127.0.0.1:`port` within `timeoutMs`; a failure is a StageFailure that says why. */
  static open(port: number, timeoutMs: number, owner: Set<Probe>): Promise<Probe> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new StageFailure(`a client could not connect to port ${port} within ${seconds(timeoutMs)}`));
      }, timeoutMs);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new StageFailure(`a client could not connect to port ${port}: ${error.code ?? error.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        const probe = new Probe(socket);
        owner.add(probe);
        resolve(probe);
      });
    });
  }

  /** Every byte received so far. */
  received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /** Received bytes not yet consumed by `expect`. */
  unread(): Buffer {
    return this.received().subarray(this.#consumed);
  }

  send(data: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Sends our FIN: the client has nothing more to say. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
    this.#end();
  }

  /**
   * Waits until `done()` holds, the connection ends, or `timeoutMs` passes. True when `done()`
   * held. Never rejects.
   */
  waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done() && !this.ended) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(done());
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        resolve(done());
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /**
   * The next `expected.length` bytes must be `expected`, within `timeoutMs`. Otherwise a
   * StageFailure: `what` (e.g. 'sent "two\n" on the same connection'), what was expected, what
   * came (and whether the connection ended), then `hint`.
   */
  async expect(expected: Buffer | string, timeoutMs: number, what: string, hint: string): Promise<void> {
    const want = Buffer.from(expected);
    const start = this.#consumed;
    await this.waitFor(() => this.#length - start >= want.length, timeoutMs);
    const got = this.received().subarray(start, start + want.length);
    if (got.equals(want)) {
      this.#consumed += want.length;
      return;
    }
    throw new StageFailure(`${what}: ${mismatch(want, got, this, timeoutMs)}${hint ? `: ${hint}` : ''}`);
  }

  /** Waits up to `timeoutMs` for the server to end the connection; true if it did. */
  waitForEnd(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.ended, timeoutMs);
  }

  #end(): void {
    this.ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** "expected 4 bytes "two\n", received 0 bytes in 5 s" and its variants: the exact difference. */
export function mismatch(want: Buffer, got: Buffer, probe: Probe, timeoutMs: number): string {
  const after = probe.reset ? ', then the connection was reset' : probe.ended ? ', then the server closed the connection' : ` in ${seconds(timeoutMs)}`;
  if (got.length < want.length && want.subarray(0, got.length).equals(got)) {
    if (want.length > 64) return `expected ${want.length} bytes back, received ${got.length}${after}`;
    return `expected ${countedBytes(want)}, received ${countedBytes(got)}${after}`;
  }
  let at = 0;
  while (at < got.length && got[at] === want[at]) at++;
  if (want.length > 64) {
    const hex = (b: number | undefined) => (b === undefined ? 'nothing' : `0x${b.toString(16).padStart(2, '0')}`);
    return `expected ${want.length} bytes back, and byte ${at} differs: expected ${hex(want[at])}, received ${hex(got[at])}`;
  }
  return `expected ${countedBytes(want)}, received ${countedBytes(got)}`;
}
