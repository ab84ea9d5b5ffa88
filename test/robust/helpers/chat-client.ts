/**
 * A chat member for the robust suite: a real TCP client that keeps every byte it receives (as
 * latin1, one character per byte) and waits for what it expects with a generous bound, never a
 * fixed sleep. `paused` makes a member that never reads: its kernel buffers fill and the server's
 * queue for it grows until the bound cuts it off.
 */

import net from 'node:net';
import { eventually } from '../../helpers/util.js';

const open = new Set<ChatClient>();

export class ChatClient {
  text = '';
  ended = false;
  closed = false;
  error: string | undefined;
  readonly #socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = error.code ?? error.message;
    });
    socket.on('close', () => {
      this.closed = true;
      open.delete(this);
    });
  }

  static connect(port: number, options: { paused?: boolean } = {}): Promise<ChatClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      const client = new ChatClient(socket);
      open.add(client);
      if (options.paused) socket.pause();
      socket.once('connect', () => resolve(client));
      socket.once('error', reject);
    });
  }

  /** Joins and waits for the welcome; resolves with the name the room gave. */
  static async join(port: number, options: { paused?: boolean } = {}): Promise<{ client: ChatClient; name: string }> {
    const client = await ChatClient.connect(port, options);
    const welcome = await client.waitFor(/^\* you are (\S+);/m);
    return { client, name: welcome[1]! };
  }

  /**
   * Resolves with the match once `pattern` appears in what was received from offset `from` on,
   * checked as each chunk arrives (no polling: a sender pacing itself on a reader waits no longer
   * than the bytes take).
   */
  waitFor(pattern: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpMatchArray> {
    const look = () => this.text.slice(from).match(pattern) ?? undefined;
    const found = look();
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onData = () => {
        const match = look();
        if (!match) return;
        done();
        resolve(match);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} in ${JSON.stringify(this.text.slice(-300))}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#socket.off('data', onData);
      };
      // After the listener that appends the chunk, so the text includes it.
      this.#socket.on('data', onData);
    });
  }

  waitForClose(timeoutMs = 30_000): Promise<true> {
    return eventually(() => this.closed || undefined, timeoutMs, 'the server to close the connection');
  }

  /** Every received line, without its newline. */
  lines(): string[] {
    return this.text.split('\n').slice(0, -1);
  }

  send(text: string | Buffer): Promise<void> {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    return new Promise((resolve, reject) => this.#socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** Stops reading: what the server sends waits in the kernel's buffers, then in the server. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** This end's port: the server's log names the member by it (`client 127.0.0.1:PORT …`). */
  get localPort(): number {
    return this.#socket.localPort!;
  }

  end(): void {
    this.#socket.end();
  }

  /** An abrupt leave: RST, not FIN. */
  reset(): void {
    this.#socket.resetAndDestroy();
  }
}

export function destroyAllChatClients(): void {
  for (const client of open) client.reset();
  open.clear();
}
