/**
 * The progress line on stderr: on a terminal one line rewritten in place (run, elapsed time,
 * clients connected and echoed); otherwise one line per finished run, so logs stay readable.
 */

import type { Progress, RunPlan } from './experiment.js';
import type { RunResult } from './types.js';

export function progressLine(stream: NodeJS.WriteStream = process.stderr): { progress: Progress; finished(run: RunResult, index: number, total: number): void } {
  const live = stream.isTTY === true;
  let startedAt = performance.now();
  let connected = new Set<number>();
  let echoed = new Set<number>();
  const label = (plan: RunPlan) => `${plan.lab}${plan.backlog === undefined ? '' : ` --backlog ${plan.backlog}`}`;
  return {
    progress(index, total, plan, event) {
      if (!event) {
        startedAt = performance.now();
        connected = new Set();
        echoed = new Set();
        if (!live) stream.write(`backlog: [${index + 1}/${total}] ${label(plan)} ...\n`);
      } else if (event.event === 'connected') connected.add(event.client);
      else if (event.event === 'echo') echoed.add(event.client);
      if (live) {
        const elapsed = ((performance.now() - startedAt) / 1000).toFixed(1);
        stream.write(`\r\x1b[Kbacklog: [${index + 1}/${total}] ${label(plan)}  ${elapsed} s  connected ${connected.size}, echoed ${echoed.size}`);
      }
    },
    finished(run, index, total) {
      const maxDepth = Math.max(0, ...run.samples.map((s) => s.acceptQueueDepth));
      const served = run.clients.filter((c) => c.outcome === 'served').length;
      const slowest = Math.max(...run.clients.map((c) => (c.connectMs ?? 0) - c.startMs));
      stream.write(
        `${live ? '\r\x1b[K' : ''}backlog: [${index + 1}/${total}] ${run.lab}${run.kind === 'sweep' ? ` --backlog ${run.backlogAsked}` : ''}: ` +
          `${(run.durationMs / 1000).toFixed(1)} s, ${served}/${run.clients.length} served, accept queue max ${maxDepth}, ` +
          `slowest handshake ${(slowest / 1000).toFixed(2)} s, ListenOverflows +${run.samples.at(-1)?.listenOverflows ?? 0}\n`,
      );
    },
  };
}
