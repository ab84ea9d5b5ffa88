/**
 * The contract every lab implements, as redis's event-loop backends each implement the same
 * small interface: start on a host and port (port 0 picks a free one), say where it listens and
 * which model it is, and close. Only the mechanism underneath differs.
 */

import type { LabInfo } from '../labs/index.js';
import type { Logger } from './log.js';
import type { ProtocolConfig } from './protocol.js';
import type { Deny } from './sandbox.js';
import type { WorkSpec } from './work.js';

/** Per-connection bounds. Every lab enforces all of them, each in its own I/O style. */
export interface ConnectionLimits {
  /** Close a connection after this long with no byte moving in either direction. */
  readonly idleTimeoutMs: number;
  /** Close a connection this long after it was accepted, however busy (bounds a slow trickle). */
  readonly maxLifetimeMs: number;
  /** http: close a connection whose request head has not fully arrived this long after it began. */
  readonly headerTimeoutMs: number;
  /** Close a connection whose unsent replies exceed this many bytes. */
  readonly maxPendingBytes: number;
}

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  /** listen(2) backlog: how many finished handshakes the kernel queues before accept. */
  readonly backlog: number;
  readonly protocol: ProtocolConfig;
  readonly work: WorkSpec;
  readonly limits: ConnectionLimits;
  /**
   * TCP_NODELAY on every accepted socket (the default): each reply leaves at once instead of
   * waiting, under Nagle's algorithm, for the ACK of the one before. `--no-nodelay` turns it off,
   * for the Nagle experiment (make nagle).
   */
  readonly noDelay: boolean;
  /** Most connections served at once; further ones are closed as soon as they are accepted. */
  readonly maxConns: number;
  /** On shutdown, how long open connections may take to finish before they are closed. */
  readonly shutdownTimeoutMs: number;
  /**
   * `--sandbox`: the command line installs the seccomp filter once the lab listens
   * (shared/sandbox.ts); a lab with a kernel interface of its own to close (lab 07's ring) reads it.
   */
  readonly sandbox: boolean;
  /** With --sandbox, what a call outside the list gets (lab 02's children install a filter of their own). */
  readonly sandboxDeny: Deny;
  readonly log: Logger;
}

export interface RunningServer {
  readonly address: { readonly host: string; readonly port: number };
  /**
   * Stops accepting at once, lets open connections finish for up to `timeoutMs` (default: the
   * shutdown timeout), then closes what is left. Calling it again with 0 closes everything now.
   */
  close(timeoutMs?: number): Promise<void>;
}

export interface Lab<Extra extends object = object> {
  /**
   * What the lab is, from the registry (labs/index.ts): its id, the model named in its listening
   * line, its traits (which flags apply) and its defaults (`defaults.maxConns` for --max-conns).
   */
  readonly info: LabInfo;
  start(options: ServerOptions & Extra): Promise<RunningServer>;
}
