/**
 * The measure step: play the plan, stamp it, and keep everything as JSON. Rendering is separate
 * (render.ts) and reads only what is written here.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { labEntry } from '../lib/launch.js';
import { machineStamp } from '../kit/stamp.js';
import { runAll, type Progress, type RunPlan } from './experiment.js';
import { currentNetwork } from './isolate.js';
import { kernelSettings } from './kernel.js';
import { describeLabs } from '../kit/labs.js';
import { readReportFile } from '../kit/report-file.js';
import { BACKLOG_SCHEMA, type BacklogReport, type RunResult, type Settings } from './types.js';

export const DEFAULT_SETTINGS: Settings = {
  holdMs: 3_000,
  clients: 6,
  gapMs: 100,
  // Long enough for a client whose SYN is dropped until the holder leaves, plus retransmits.
  clientTimeoutMs: 15_000,
  sampleMs: 50,
  userSpaceWaitMs: 50,
};

export interface MeasureOptions {
  readonly command: string;
  readonly signal?: AbortSignal;
  readonly progress?: Progress;
  readonly finished?: (run: RunResult, index: number, total: number) => void;
}

export async function measure(plans: readonly RunPlan[], settings: Settings, options: MeasureOptions): Promise<BacklogReport> {
  for (const lab of new Set(plans.map((p) => p.lab))) {
    if (!existsSync(labEntry(lab))) throw new UserError(`${path.relative(process.cwd(), labEntry(lab))} is missing: build the labs first (make build)`);
  }
  if (process.platform !== 'linux') throw new UserError('the backlog experiment reads /proc and needs Linux');
  const kernel = kernelSettings();
  const stamp = machineStamp(options.command);
  const started = performance.now();
  const runs = await runAll(plans, {
    settings,
    kernel,
    captureSs: true,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
    ...(options.finished ? { finished: options.finished } : {}),
  });
  const labs = describeLabs([...new Set(plans.map((plan) => plan.lab))]);
  return { experiment: 'backlog', schema: BACKLOG_SCHEMA, stamp, labs, settings, kernel, network: currentNetwork(), wallMs: Math.round(performance.now() - started), runs };
}

/** Reads results/backlog.json (or another file) for rendering; schema 1 is lifted by `migrateBacklogV1`. */
export function loadReport(file: string): BacklogReport {
  return readReportFile<BacklogReport>(file, { experiment: 'backlog', schema: BACKLOG_SCHEMA, measure: 'make backlog', migrate: migrateBacklogV1 });
}

/**
 * Schema 1 (committed before schema 2) held the same runs without the lab descriptions: they come
 * from the registry as it is at migration.
 */
export function migrateBacklogV1(raw: Record<string, unknown>): BacklogReport | undefined {
  if (raw.schema !== 1 || !Array.isArray(raw.runs)) return undefined;
  const old = raw as unknown as Omit<BacklogReport, 'experiment' | 'schema' | 'labs'>;
  return { ...old, experiment: 'backlog', schema: BACKLOG_SCHEMA, labs: describeLabs([...new Set(old.runs.map((run) => run.lab))]) };
}
