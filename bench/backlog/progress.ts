/**
 * The backlog experiment on the shared progress line (pipeline/progress.ts): one step per run; on
 * a terminal the clients connected and echoed so far; a line with each run's result.
 */

import { Progress as Line } from '../kit/progress.js';
import type { Progress, RunPlan } from './experiment.js';
import type { RunResult } from './types.js';

/**
 * Planned seconds of one run besides client 1's hold: starting and stopping the lab, and the
 * waiting clients' own echoes and closes after client 1 leaves (about a second on a busy machine).
 */
const RUN_OVERHEAD_S = 1.5;

export function progressLine(runs: number, holdMs: number): { progress: Progress; finished(run: RunResult, index: number, total: number): void } {
  const perRun = holdMs / 1000 + RUN_OVERHEAD_S;
  const line = new Line('backlog', runs * perRun);
  let connected = new Set<number>();
  let echoed = new Set<number>();
  const label = (plan: RunPlan) => `${plan.lab}${plan.backlog === undefined ? '' : ` --backlog ${plan.backlog}`}`;
  return {
    progress(index, total, plan, event) {
      if (!event) {
        connected = new Set();
        echoed = new Set();
        line.step(`[${index + 1}/${total}] ${label(plan)}`, perRun);
        return;
      }
      if (event.event === 'connected') connected.add(event.client);
      else if (event.event === 'echo') echoed.add(event.client);
      line.update(`connected ${connected.size}, echoed ${echoed.size}`);
    },
    finished(run, index, total) {
      const maxDepth = Math.max(0, ...run.samples.map((s) => s.acceptQueueDepth));
      const served = run.clients.filter((c) => c.outcome === 'served').length;
      const slowest = Math.max(...run.clients.map((c) => (c.connectMs ?? 0) - c.startMs));
      line.note(
        `[${index + 1}/${total}] ${run.lab}${run.kind === 'sweep' ? ` --backlog ${run.backlogAsked}` : ''}: ` +
          `${(run.durationMs / 1000).toFixed(1)} s, ${served}/${run.clients.length} served, accept queue max ${maxDepth}, ` +
          `slowest handshake ${(slowest / 1000).toFixed(2)} s, ListenOverflows +${run.samples.at(-1)?.listenOverflows ?? 0}`,
      );
      if (index === total - 1) line.done();
    },
  };
}
