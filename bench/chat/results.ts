/** results/chat.json: what `make chat` measured, typed and versioned (bench/kit/report-file.ts). */

import type { ReportFile } from '../kit/report-file.js';

export const CHAT_SCHEMA = 1;

/** One room size and sender count against one lab: the C client's figures and the server's CPU. */
export interface ChatRun {
  readonly members: number;
  readonly senders: number;
  /** Members that never read (the slow-reader case: 1; otherwise 0). */
  readonly stuck: number;
  readonly size: number;
  /** Seconds from the first connect until the whole join was announced (absent in older reports). */
  readonly joinS?: number;
  readonly windowS: number;
  readonly messages: number;
  readonly deliveries: number;
  readonly deliveriesPerSec: number;
  readonly latencyUs: { readonly count: number; readonly p50: number; readonly p99: number; readonly max: number };
  /** Server tree CPU over the window, ms; null when it could not be read. */
  readonly serverCpuMs: number | null;
  readonly serverPeakRssBytes: number | null;
  /** The C load generator's CPU over the window, as a share of one core. */
  readonly loadGenCoreFraction: number;
  /** Members the server's log says it cut off (slow readers). */
  readonly cutOff: number;
  readonly errors: { readonly connect: number; readonly socket: number; readonly order: number; readonly missing: number; readonly total: number };
  readonly firstError?: string;
}

/** A cell a lab cannot take, and why (from its model). */
export interface ChatSkip {
  readonly members: number;
  readonly reason: string;
}

export interface ChatTarget {
  readonly lab: string;
  readonly label: string;
  readonly variant: string;
  readonly runs: ChatRun[];
  /** The slow-reader pair: the same room without and with one member that never reads. */
  readonly slow: { readonly without: ChatRun; readonly with: ChatRun } | { readonly skipped: string };
  readonly skipped: ChatSkip[];
  /** The run failed as a whole (the server would not start, the client could not run). */
  readonly failed?: string;
  /** The cell it failed in (absent: before the first, or in a report written before this field). */
  readonly failedAt?: ChatCell;
}

/** One cell of a target's run: a room and its senders, or the slow-reader case. */
export interface ChatCell {
  readonly members: number;
  readonly senders: number;
  readonly slow?: true;
}

export interface ChatReport extends ReportFile<'chat', typeof CHAT_SCHEMA> {
  readonly results: {
    readonly settings: {
      readonly rooms: readonly number[];
      readonly senders: readonly number[];
      readonly size: number;
      readonly warmupS: number;
      readonly seconds: number;
      readonly slow: { readonly members: number; readonly size: number; readonly seconds: number };
    };
    /** Labs left out entirely, and why. */
    readonly leftOut: { readonly lab: string; readonly reason: string }[];
    readonly targets: ChatTarget[];
  };
}
