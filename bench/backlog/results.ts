/**
 * The shape of results/backlog.json: everything the measure step saw, and the conclusions it drew
 * from that evidence, so the render step (and anyone else) can work from the file alone.
 * Times are milliseconds since client 1 started connecting, unless a name says otherwise.
 */

import type { ReportFile } from '../kit/report-file.js';

/** The scripted arrival, the same for every run. */
export interface ArrivalSettings {
  /** How long client 1 keeps its connection open after connecting. */
  readonly holdMs: number;
  /** Clients in all, client 1 included. */
  readonly clients: number;
  /** Time between the starts of clients 2..K. */
  readonly gapMs: number;
  /** A client not done (connected, echoed and closed) this long after it started gives up. */
  readonly clientTimeoutMs: number;
}

export interface Settings extends ArrivalSettings {
  /** How often the listening socket, the kernel counters and every client's socket are read. */
  readonly sampleMs: number;
  /**
   * A first echo later than this after the handshake (and after any wait the kernel explains)
   * counts as a wait in user space. Below it the client "waited nowhere".
   */
  readonly userSpaceWaitMs: number;
}

/** The kernel settings that decide what the experiment shows. */
export interface KernelSettings {
  readonly somaxconn: number | undefined;
  /** net.ipv4.tcp_syn_linear_timeouts (Linux 6.7+): SYN retransmits before the timer starts doubling. */
  readonly synLinearTimeouts: number | undefined;
  readonly synRetries: number | undefined;
  readonly synackRetries: number | undefined;
  readonly abortOnOverflow: number | undefined;
  readonly syncookies: number | undefined;
}

/**
 * Where one client's socket was at one sample, read from /proc/net/tcp:
 * - `syn-sent`: the client's SYN is unanswered (the server's kernel dropped it);
 * - `syn-recv`: the server holds only a request socket (it never completed, or dropped the final ACK);
 * - `accept-queue`: handshake done, waiting in the listening socket's accept queue (no file yet);
 * - `accepted`: the server process holds the connection;
 * - `closing`: one side has closed;
 * - `none`: no socket (not started yet, or gone).
 */
export type Phase = 'none' | 'syn-sent' | 'syn-recv' | 'accept-queue' | 'accepted' | 'closing';

export interface Sample {
  readonly t: number;
  /** Recv-Q of the LISTEN socket: connections waiting for accept(). */
  readonly acceptQueueDepth: number;
  /** Machine-wide TcpExt counters, as increases since the run started. */
  readonly listenOverflows: number;
  readonly listenDrops: number;
  /** Processes in the lab's process tree (a process-per-connection lab forks one per client). */
  readonly processes: number;
  /** Per client (index 0 = client 1), its phase at this sample. */
  readonly phases: readonly Phase[];
}

export type Outcome = 'served' | 'refused' | 'reset' | 'connect timed out' | 'no echo (timed out)' | 'failed';

export type WaitPlace = 'syn-retransmit' | 'final-ack-dropped' | 'accept-queue' | 'user-space' | 'unobserved';

export interface Wait {
  readonly where: WaitPlace;
  readonly fromMs: number;
  readonly toMs: number;
}

/** What one client measured of itself during an arrival (bench/backlog/arrival.ts). */
export interface ClientTiming {
  /** 1-based, as the report names them. */
  readonly client: number;
  readonly startMs: number;
  /** Handshake complete as the client sees it ('connect' event). */
  readonly connectMs?: number;
  readonly firstEchoMs?: number;
  /** Client 1: when it began to close after holding. Others close as soon as their echo is back. */
  readonly closeMs?: number;
  readonly closedMs?: number;
  readonly outcome: Outcome;
  readonly error?: string;
  /** The client's ephemeral port, which ties it to rows of /proc/net/tcp. */
  readonly localPort?: number;
}

/** A client's timing with what the kernel showed of it: when it was accepted, where it waited. */
export interface ClientRecord extends ClientTiming {
  /** Time of the first sample that saw the server holding the connection (accept() returned). */
  readonly acceptedMs?: number;
  /** Where the client waited, in order; empty means it waited nowhere. */
  readonly waits: readonly Wait[];
  /** When connecting took SYN retransmits: the retransmit times (s after start) that match. */
  readonly synRetransmitsS?: readonly number[];
}

export interface RunResult {
  /** 'model': the lab's own default backlog; 'sweep': the kernel-queue-only lab at a chosen backlog. */
  readonly kind: 'model' | 'sweep';
  readonly lab: string;
  /** The model's name as the lab printed it on its listening line. */
  readonly model: string;
  readonly args: readonly string[];
  readonly backlogAsked: number;
  /** The kernel's backlog for the LISTEN socket, min(backlog asked, somaxconn). */
  readonly effectiveBacklog: number;
  /** 'ss': read from the Send-Q of `ss -ltn` (sock_diag); 'computed': ss missing, so min(asked, somaxconn). */
  readonly effectiveBacklogSource: 'ss' | 'computed';
  /** Wall time of the scripted arrival, from client 1's start to the last client's close. */
  readonly durationMs: number;
  readonly clients: readonly ClientRecord[];
  readonly samples: readonly Sample[];
  /** Client sockets seen in /proc/net/tcp that no client of ours owned (another program's). */
  readonly strangerSockets: number;
  /** What `ss` printed just before client 1 closed (empty when ss is not installed). */
  readonly ss: readonly SsSnapshot[];
}

export interface SsSnapshot {
  readonly command: string;
  readonly output: string;
  readonly atMs: number;
}

/** 2: names its experiment and carries the registry's descriptions of the labs it ran. */
export const BACKLOG_SCHEMA = 2;

export interface BacklogReport extends ReportFile<'backlog', typeof BACKLOG_SCHEMA> {
  readonly settings: Settings;
  readonly kernel: KernelSettings;
  /**
   * 'own network namespace': the counters and socket tables held this experiment's sockets only.
   * 'shared with the machine': ListenOverflows/ListenDrops include every other program's drops.
   */
  readonly network: 'own network namespace' | 'shared with the machine';
  readonly wallMs: number;
  readonly runs: readonly RunResult[];
}
