/**
 * The system calls a lab makes in steady state, for one protocol: strace attached to the lab's
 * tree once it listens (where the sandbox goes on), the protocol's workload (./workload.ts), then
 * SIGTERM and its graceful shutdown, still traced, since the filter must allow that too. What it
 * counts is the evidence for the lab's allow-list (labs/index.ts `sandbox`), and the report
 * compares the two.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LabCase } from '../../test/helpers/labs.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { countSystemCalls, type CallCount } from '../syscalls/trace.js';
import { exercise, filesRoot, type Served } from './workload.js';

export interface TracedRun {
  readonly calls: Record<string, CallCount>;
  readonly served: Served;
  /** How the lab ended after SIGTERM: 0 when it drained and exited cleanly. */
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** Starts `labCase` with `protocol` and `args`, traces it through `rounds` of the workload and its shutdown. */
export async function traceLab(labCase: Pick<LabCase, 'start' | 'traits'>, protocol: ProtocolName, rounds: number, args: readonly string[] = []): Promise<TracedRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-harden-'));
  try {
    const root = protocol === 'files' ? ['--root', filesRoot(dir)] : [];
    const lab = await labCase.start(['--quiet', '--protocol', protocol, ...root, ...args]);
    let served: Served = { exchanges: 0, problems: [] };
    let exitCode: number | null = null;
    const calls = await countSystemCalls(lab.pid, async () => {
      served = await exercise(protocol, { port: lab.port, rounds, oneAtATime: labCase.traits.kernelQueueOnly });
      exitCode = (await lab.stop('SIGTERM')).code;
    });
    return { calls, served, exitCode, stderr: lab.output().stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
