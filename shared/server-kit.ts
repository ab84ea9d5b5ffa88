/**
 * Small pieces every lab's server needs around its model: binding a `net.Server` with errors a
 * user can read, keeping the set of open connections, and the graceful-close sequence.
 */

import type { Server } from 'node:net';
import { UserError } from './errors.js';
import type { Connection } from './socket-connection.js';

export interface Bind {
  readonly host: string;
  readonly port: number;
  readonly backlog: number;
}

/** listen(2) on a net.Server; a port in use or an address we cannot bind is the user's to fix. */
export function listen(server: Server, bind: Bind): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(bindError(error, bind));
    server.once('error', onError);
    server.listen({ host: bind.host, port: bind.port, backlog: bind.backlog }, () => {
      server.off('error', onError);
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('TCP server has no TCP address');
      resolve({ host: address.address, port: address.port });
    });
  });
}

/** Maps a bind failure to one line for the user; unknown codes stay bugs. */
export function bindError(error: NodeJS.ErrnoException, bind: Bind): Error {
  const where = `${bind.host}:${bind.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new UserError(`cannot listen on ${where}: the port is already in use (pick another with PORT=… or --port)`);
    case 'EACCES':
      return new UserError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`cannot listen on ${where}: no such local address`);
    default:
      return error;
  }
}

/** The connections a server has open, for shutdown and for the connection cap. */
export class OpenConnections {
  readonly #open = new Set<Connection>();
  #onEmpty: (() => void) | undefined;

  get size(): number {
    return this.#open.size;
  }

  add(connection: Connection): void {
    this.#open.add(connection);
    void connection.closed.then(() => {
      this.#open.delete(connection);
      if (this.#open.size === 0) this.#onEmpty?.();
    });
  }

  stopAll(): void {
    for (const connection of this.#open) connection.stop();
  }

  destroyAll(): void {
    for (const connection of this.#open) connection.destroy();
  }

  whenEmpty(): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#onEmpty = resolve;
    });
  }
}

export interface Shutdown {
  /** Stop taking new connections (close the listening socket). */
  stopAccepting(): void;
  /** Ask open connections to finish what they are doing. */
  finish(): void;
  /** Close whatever is still open. */
  force(): void;
  /** Resolves once nothing is open. */
  drained(): Promise<void>;
  /** Anything to release after the last connection (a worker pool). */
  release?(): Promise<void>;
}

/**
 * Builds a lab's `close(timeoutMs?)`: stop accepting, let connections finish, force the rest at
 * the deadline. Closing twice returns the same promise; a second call with 0 forces at once.
 */
export function gracefulClose(shutdown: Shutdown, defaultTimeoutMs: number): (timeoutMs?: number) => Promise<void> {
  let closing: Promise<void> | undefined;
  let deadline: NodeJS.Timeout | undefined;
  return (timeoutMs = defaultTimeoutMs) => {
    if (closing) {
      if (timeoutMs === 0) shutdown.force();
      return closing;
    }
    shutdown.stopAccepting();
    shutdown.finish();
    if (timeoutMs === 0) shutdown.force();
    else deadline = setTimeout(() => shutdown.force(), timeoutMs);
    closing = shutdown.drained().then(async () => {
      clearTimeout(deadline);
      await shutdown.release?.();
    });
    return closing;
  };
}
