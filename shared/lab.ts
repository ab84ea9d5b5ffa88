/**
 * The contract every lab implements, as redis's event-loop backends each implement the same
 * small interface: start on a host and port (port 0 picks a free one), say where it listens and
 * which model it is, and close. Only the mechanism underneath differs.
 */

import type { ProtocolConfig, ProtocolName } from './conversation.js';
import type { Logger } from './log.js';
import type { WorkSpec } from './work.js';


/** What a sandboxed lab's filter does to a call outside its allow-list (shared/sandbox.ts). */
export type Deny = 'eperm' | 'kill';

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

// --- What the lab registry (labs/index.ts) says of each lab -----------------------------------

/** What a lab's model has, so harnesses generate only the cases that apply to it. */
export interface LabTraits {
  /** Serves each connection in a child process (its tree has children; one may be killed). */
  readonly children: boolean;
  /** Runs the work on a pool of worker threads (a task may fail on a thread). */
  readonly pool: boolean;
  /**
   * The kernel's accept queue is the only queue: the server takes one client at a time, so
   * `--max-conns` does not apply and a second client waits unanswered in the backlog.
   */
  readonly kernelQueueOnly: boolean;
}

/** One configuration a lab is tested and measured in: a name and the flags that select it. */
export interface LabVariant {
  /** Shown in test titles and reports after the lab's label, e.g. "epoll, edge". */
  readonly name: string;
  readonly args: readonly string[];
  /**
   * A configuration that serves a fixed number of clients at once while the rest wait in the
   * kernel's accept queue until one of them leaves (lab 08's prethreaded pool: its threads), so
   * --max-conns closes nobody at once. Undefined: as the lab's traits say (kernelQueueOnly: one
   * at a time; otherwise every client up to --max-conns).
   */
  readonly servedAtOnce?: number;
  /**
   * Each connection is served by a thread started for it (lab 08 per connection): a Node thread
   * has an event loop of its own, whose descriptors (an epoll, an eventfd, a pipe) the connection
   * holds too.
   */
  readonly threadPerConnection?: boolean;
  /**
   * The variant changes only how a new connection reaches the code that serves it (lab 06's
   * --balance: which loop accepts it; lab 08's pool: a thread that was waiting in accept, not one
   * started for it); once accepted, it is served by the same code as in the
   * lab's first variant. The test families about serving a connection (payloads, memory, the
   * protocols) run the first variant only; those about accepting and starting run every one.
   */
  readonly acceptOnly?: boolean;
}

export interface LabInfo {
  /** The lab's folder under labs/, e.g. "04-evented". */
  readonly id: string;
  /** Short name for chart axes and table rows. */
  readonly label: string;
  /**
   * How concurrency arises, in a few words: the listening line and every report's legend. Short,
   * because it ends every lab's first line of output (and the READMEs' transcripts quote it).
   */
  readonly model: string;
  /**
   * What the model itself limits, for reports to quote beside the measurement that shows it
   * (never a number: numbers come from measurements).
   */
  readonly limit?: string;
  /** Where an accepted client's first echo waits in this model, for the backlog experiment's prose. */
  readonly acceptedWait: string;
  readonly traits: LabTraits;
  /**
   * The protocols this lab serves (`--protocol`, `make lab-NN PROTOCOL=...`): harnesses generate
   * a protocol's cases only for the labs that list it, and the lab refuses any other in one line.
   */
  readonly protocols: readonly ProtocolName[];
  /** Defaults of this lab that differ from every lab's (shared/cli.ts), with their reasons in the lab. */
  readonly defaults: { readonly maxConns?: number };
  /**
   * The flag that sets how many cores the lab uses, if it has one. Harnesses pass the machine's
   * core count explicitly: a process started under `taskset` sees only its own core.
   */
  readonly coresFlag?: string;
  /** `make lab-NN` variables of this lab alone, and the flag each becomes (e.g. THREADS → --threads). */
  readonly makeVariables: Readonly<Record<string, string>>;
  /**
   * A kernel interface the lab cannot run without, which a machine may refuse (a container's
   * seccomp filter, kernel.io_uring_disabled): the lab then exits 2 with one line naming the cause,
   * and harnesses skip it after saying so (test/helpers/labs.ts).
   */
  readonly needs?: 'io_uring';
  /** The configurations to test and measure; one unnamed variant with no flags for most labs. */
  readonly variants: readonly LabVariant[];
  /**
   * files: the ways this lab can copy a file to a socket, when it has a choice (`--copy`); the
   * files experiment and the robust suite try each. Labs on net.Socket stream through Node only.
   */
  readonly fileCopies?: readonly LabVariant[];
  /**
   * `--sandbox` (shared/sandbox.ts): the system calls this model makes once it listens, beyond
   * Node's own (NODE_RUNTIME there). The list is the model's attack surface: measured with strace
   * under load in every protocol and variant (make harden sets the measurement beside it), plus
   * the rare paths a short run does not show, each named where it is added. `files`: what serving
   * files adds (the lookup, then the lab's way of sending). `child`: for a lab that serves each
   * client in a child process, the calls a child keeps once it runs: it adds a filter of its own
   * with only these (and Node's, and files'), narrower than the one it inherited.
   */
  readonly sandbox: { readonly calls: readonly string[]; readonly files: readonly string[]; readonly child?: readonly string[] };
}
