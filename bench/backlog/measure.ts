/**
 * The measure step: play the plan, stamp it, and keep everything as JSON. Rendering is separate
 * (render.ts) and reads only what is written here.
 */

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { labEntry } from '../lib/launch.js';
import { machineStamp } from '../pipeline/stamp.js';
import { runAll, type Progress, type RunPlan } from './experiment.js';
import { currentNetwork } from './isolate.js';
import { kernelSettings } from './kernel.js';
import type { BacklogReport, RunResult, Settings } from './types.js';

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
  return { schema: 1, stamp, settings, kernel, network: currentNetwork(), wallMs: Math.round(performance.now() - started), runs };
}

/** JSON with one line per sample and per client, so diffs between two runs stay readable. */
export function saveReport(file: string, report: BacklogReport): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${compactJson(report, '')}\n`);
}

/** Like JSON.stringify(value, null, 2), but anything that fits in `width` characters stays on one line. */
function compactJson(value: unknown, indent: string, width = 240): string {
  const flat = JSON.stringify(value);
  if (flat === undefined || value === null || typeof value !== 'object' || flat.length <= width) return flat ?? 'null';
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + compactJson(v, inner, width)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${compactJson(v, inner, width)}`).join(',\n')}\n${indent}}`;
}

export function loadReport(file: string): BacklogReport {
  let report: BacklogReport;
  try {
    report = JSON.parse(readFileSync(file, 'utf8')) as BacklogReport;
  } catch (error) {
    throw new UserError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)} (measure first: make backlog)`);
  }
  if (report.schema !== 1) throw new UserError(`${file} has schema ${String(report.schema)}, this renderer reads schema 1`);
  return report;
}
