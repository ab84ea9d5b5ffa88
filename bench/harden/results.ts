/** The shape of results/hardening.json (schema 1): everything make harden measured, for its renderer alone. */

import type { ReportFile } from '../kit/report-file.js';
import type { CallCount } from '../syscalls/trace.js';
import type { CapabilityResult, VethResult } from './namespaces.js';
import type { PerfRow } from './perf.js';
import type { ProbeRow } from './probes.js';
import type { Refusals } from './refusal.js';

export const HARDEN_SCHEMA = 1;

/** One lab, variant and protocol served under --sandbox with strace counting. */
export interface TracedProtocol {
  readonly lab: string;
  readonly variant: string;
  readonly protocol: string;
  /** Names on the allow-list for this lab and protocol (shared/sandbox.ts allowList). */
  readonly allowed: readonly string[];
  /** Every system call strace counted in steady state and shutdown. */
  readonly calls: Readonly<Record<string, CallCount>>;
  readonly exchanges: number;
  /** What went wrong (nothing, when every exchange was answered exactly). */
  readonly problems: readonly string[];
  /** After SIGTERM: 0 when it drained and exited cleanly. */
  readonly exitCode: number | null;
}

/** What code inside a lab's sandbox is refused, under the lab's list for one protocol. */
export interface LabRefusals extends Refusals {
  readonly lab: string;
  readonly protocol: string;
  /** The narrower list a child process of the lab installs for itself (labs/index.ts `sandbox.child`). */
  readonly child?: boolean;
}

export interface HardenResults {
  readonly arch: string;
  readonly traced: readonly TracedProtocol[];
  readonly refusals: readonly LabRefusals[];
  /** Node's own list (NODE_RUNTIME) with TSYNC and without. */
  readonly tsync?: { readonly with: Refusals; readonly without: Refusals };
  /** IORING_OP_MKDIRAT under a mkdir-refusing filter, on an unrestricted and a restricted ring. */
  readonly uring?: readonly { readonly ring: string; readonly mkdirSyscall: string; readonly mkdiratOnRing: string }[];
  readonly capabilities?: CapabilityResult & { readonly lab: string };
  readonly veth?: VethResult & { readonly lab: string };
  readonly probes: readonly ProbeRow[];
  readonly probeSettings: { readonly deadlineMs: number; readonly workUs: number };
  readonly perf: readonly PerfRow[];
  /** One line when perf has software counters only. */
  readonly perfNote?: string;
  /** deploy/iolab@.service as systemd-analyze sees it. */
  readonly unit?: { readonly verify: string; readonly score: number; readonly verdict: string };
  /** Every part not measured here, and why, in one line each. */
  readonly skipped: readonly { readonly part: string; readonly reason: string }[];
}

export interface HardenReport extends ReportFile<'hardening', typeof HARDEN_SCHEMA> {
  readonly results: HardenResults;
}
