/**
 * The measure step: play the plan with its progress line and keep everything as JSON (the kit
 * stamps and writes it). Rendering is separate (render.ts) and reads only what is written here.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { labEntry } from '../../harness/launch.js';
import type { Body } from '../kit/experiment.js';
import { describeLabs } from '../kit/labs.js';
import type { Progress as Line } from '../kit/progress.js';
import { runScenario, type RunPlan } from './run.js';
import { currentNetwork } from './isolate.js';
import { kernelSettings } from './kernel.js';
import type { BacklogReport, RunResult, Settings } from './results.js';

export const DEFAULT_SETTINGS: Settings = {
  holdMs: 3_000,
  clients: 6,
  gapMs: 100,
  // Long enough for a client whose SYN is dropped until the holder leaves, plus retransmits.
  clientTimeoutMs: 15_000,
  sampleMs: 50,
  userSpaceWaitMs: 50,
};

/**
 * Planned seconds of one run besides client 1's hold: starting and stopping the lab, and the
 * waiting clients' own echoes and closes after client 1 leaves (about a second on a busy machine).
 */
const RUN_OVERHEAD_S = 1.5;

/** Plays every plan; the progress line shows one step per run, the clients connected and echoed so far, and each run's result. */
export async function measure(plans: readonly RunPlan[], settings: Settings, progress: (plannedSeconds: number) => Line, signal: AbortSignal): Promise<Body<BacklogReport>> {
  for (const lab of new Set(plans.map((p) => p.lab))) {
    if (!existsSync(labEntry(lab))) throw new UserError(`${path.relative(process.cwd(), labEntry(lab))} is missing: build the labs first (make build)`);
  }
  if (process.platform !== 'linux') throw new UserError('the backlog experiment reads /proc and needs Linux');
  const kernel = kernelSettings();
  const started = performance.now();
  const perRun = settings.holdMs / 1000 + RUN_OVERHEAD_S;
  const line = progress(plans.length * perRun);
  const runs: RunResult[] = [];
  for (const [index, plan] of plans.entries()) {
    const connected = new Set<number>();
    const echoed = new Set<number>();
    const of = `[${index + 1}/${plans.length}]`;
    line.step(`${of} ${plan.lab}${plan.backlog === undefined ? '' : ` --backlog ${plan.backlog}`}`, perRun);
    const run = await runScenario(plan, {
      settings,
      kernel,
      captureSs: true,
      signal,
      onClient(client, event) {
        if (event === 'connected') connected.add(client);
        else if (event === 'echo') echoed.add(client);
        line.update(`connected ${connected.size}, echoed ${echoed.size}`);
      },
    });
    const maxDepth = Math.max(0, ...run.samples.map((s) => s.acceptQueueDepth));
    const served = run.clients.filter((c) => c.outcome === 'served').length;
    const slowest = Math.max(...run.clients.map((c) => (c.connectMs ?? 0) - c.startMs));
    line.note(
      `${of} ${run.lab}${run.kind === 'sweep' ? ` --backlog ${run.backlogAsked}` : ''}: ` +
        `${(run.durationMs / 1000).toFixed(1)} s, ${served}/${run.clients.length} served, accept queue max ${maxDepth}, ` +
        `slowest handshake ${(slowest / 1000).toFixed(2)} s, ListenOverflows +${run.samples.at(-1)?.listenOverflows ?? 0}`,
    );
    runs.push(run);
  }
  line.done();
  const labs = describeLabs([...new Set(plans.map((plan) => plan.lab))]);
  return { labs, settings, kernel, network: currentNetwork(), wallMs: Math.round(performance.now() - started), runs };
}
