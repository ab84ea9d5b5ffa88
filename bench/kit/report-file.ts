/**
 * The results file every experiment writes and renders from: typed JSON that names its
 * experiment and its schema version, and carries the run's stamp and the lab descriptions it used.
 * Rendering reads this file alone; a file of another schema is refused with one line (or lifted
 * by the experiment's migration, for the schema-1 files committed before this one existed).
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../../shared/errors.js';
import { repoRoot } from '../../harness/launch.js';
import type { LabDescription } from './labs.js';
import type { Stamp } from './stamp.js';

export interface ReportFile<Experiment extends string, Schema extends number> {
  readonly experiment: Experiment;
  readonly schema: Schema;
  readonly stamp: Stamp;
  /** The registry's descriptions of the labs measured, copied when they were measured. */
  readonly labs: readonly LabDescription[];
}

/** Where a run writes: results/ for a full run, results/quick/ (ignored by git) for a quick one. */
export function reportPaths(experiment: string, quick: boolean): { json: string; markdown: string } {
  const folder = path.join(repoRoot, 'results', ...(quick ? ['quick'] : []));
  return { json: path.join(folder, `${experiment}.json`), markdown: path.join(folder, `${experiment}.md`) };
}

/** JSON with anything that fits in 240 characters on one line, so diffs between two runs stay readable. */
export function writeReportFile(file: string, report: ReportFile<string, number>): void {
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

export interface ReadOptions<T> {
  readonly experiment: T extends ReportFile<infer E, number> ? E : never;
  readonly schema: T extends ReportFile<string, infer S> ? S : never;
  /** The command that measures again, for the error lines. */
  readonly measure: string;
  /** Lifts an older file into this schema, or returns undefined when it does not recognise it. */
  readonly migrate?: (raw: Record<string, unknown>) => T | undefined;
}

export function readReportFile<T extends ReportFile<string, number>>(file: string, options: ReadOptions<T>): T {
  const shown = path.relative(process.cwd(), file) || file;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new UserError(`cannot read ${shown} (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); measure first: ${options.measure}`);
  }
  if (raw.experiment === options.experiment && raw.schema === options.schema) return raw as unknown as T;
  if (raw.experiment !== undefined && raw.experiment !== options.experiment) {
    throw new UserError(`${shown} holds results of the ${String(raw.experiment)} experiment, not ${options.experiment}`);
  }
  const migrated = options.migrate?.(raw);
  if (migrated) return migrated;
  throw new UserError(`${shown} has schema ${String(raw.schema ?? 'none')}; this renderer reads schema ${options.schema}: measure again with ${options.measure}`);
}
