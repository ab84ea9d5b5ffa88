/** What lab 06's main thread and its worker threads tell each other. */

import type { ConnectionLimits } from '../../shared/lab.js';
import type { ProtocolConfig } from '../../shared/protocol.js';
import type { RoomDelivery, RoomRequest } from '../../shared/room.js';
import type { WorkSpec } from '../../shared/work.js';

/** Per worker, in `counters`: connections served, then round trips (jobs answered). */
export const COUNTERS_PER_WORKER = 2;

/** Indexes into `slots`. */
export const OPEN = 0;
export const CAP = 1;

export interface WorkerConfig {
  /** Which loop this is, from 0 (as pm2 numbers its instances): "worker 0" in every log line. */
  readonly index: number;
  /** The listening socket this loop accepts from (shared, reuseport); absent for handoff. */
  readonly listenFd?: number;
  readonly backlog: number;
  readonly protocol: ProtocolConfig;
  readonly limits: ConnectionLimits;
  readonly noDelay: boolean;
  /** Calibrated by the main thread, so no loop spends its start-up calibrating. */
  readonly work: WorkSpec;
  readonly quiet: boolean;
  /**
   * Shared by every loop: [OPEN] connections open in the whole server, [CAP] the most allowed
   * (--max-conns, or fewer when the open-file limit leaves less room; server.ts).
   */
  readonly slots: Int32Array;
  /** COUNTERS_PER_WORKER counters per worker, shared with the main thread. */
  readonly counters: BigInt64Array;
}

export type ToWorker =
  /** handoff: serve the connection on this descriptor; it is the worker's to close. */
  | { readonly type: 'connection'; readonly fd: number }
  /** Shutdown: stop accepting, let open connections finish. */
  | { readonly type: 'stop' }
  /** Shutdown deadline: close every connection now. */
  | { readonly type: 'force' }
  /** The room: bytes from the room (kept by the main thread) for this loop's members. */
  | { readonly type: 'room'; readonly delivery: RoomDelivery };

export type FromWorker =
  /** The worker's loop is running (and listening, if it accepts itself); `tid` is its kernel thread id. */
  | { readonly type: 'ready'; readonly tid: number | undefined }
  /** handoff: the descriptor of a `connection` message is this loop's now (served, or closed here). */
  | { readonly type: 'adopted'; readonly fd: number }
  /** The room: a member of this loop joined, spoke or left; the main thread's room answers. */
  | { readonly type: 'room'; readonly request: RoomRequest };
