/**
 * The exercise checker's tests: C servers compiled once per file (a hand-completed solution, and
 * known-bad fixtures made from it by one edit each: the one mistake a fixture stands for), and a
 * run of the real checker against any command, with every process it started seen gone after.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { repoRoot } from '../../harness/launch.js';
import { findExercise } from '../../exercises/checker/exercises.js';
import { freePort, serverCommand } from '../../exercises/checker/main.js';
import { check, type CheckReport } from '../../exercises/checker/run.js';
import { processes } from '../../exercises/checker/server.js';

/** A solution's source with one edit: `from` must occur exactly once, so a fixture never silently stops being bad. */
export function edited(source: string, edits: readonly (readonly [string, string])[]): string {
  let result = source;
  for (const [from, to] of edits) {
    expect(result.split(from).length - 1, `the edit's text occurs once: ${JSON.stringify(from)}`).toBe(1);
    result = result.replace(from, to);
  }
  return result;
}

/** The text of a file under the repository root. */
export const repoFile = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

/** A folder for one test file's binaries; `compile` puts each C source there once. */
export class Binaries {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'exercise-fixtures-'));

  /** Compiles `source` (C) as `name`; returns the binary's path. */
  compile(name: string, source: string): string {
    const file = path.join(this.dir, `${name}.c`);
    writeFileSync(file, source);
    const binary = path.join(this.dir, name);
    execFileSync('cc', ['-O2', '-w', '-o', binary, file], { stdio: ['ignore', 'ignore', 'inherit'] });
    return binary;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The live (non-zombie) processes of these process groups. */
function leftOver(groups: readonly number[]): number[] {
  return processes()
    .filter((p) => groups.includes(p.pgrp) && p.state !== 'Z')
    .map((p) => p.pid);
}

/**
 * Runs exercise `id`'s checker against `command` (a path or a shell command; 'lab' for the lab's
 * own model) on a free port, and asserts that every process it started is gone afterwards.
 */
export async function runChecker(id: string, command: string, options: { startMs?: number; upTo?: number } = {}): Promise<CheckReport> {
  const exercise = findExercise(id)!;
  const report = await check(exercise.stages, {
    command: command === 'lab' ? serverCommand(exercise, 'lab') : command,
    port: await freePort(),
    cwd: repoRoot,
    ...options,
  });
  expect(leftOver(report.groups), 'processes the checker started and left running').toEqual([]);
  return report;
}

/** Asserts every stage of the exercise passed, naming the failure otherwise. */
export function expectPassed(report: CheckReport, id: string): void {
  const failed = report.results.find((result) => result.failure !== undefined);
  expect(failed?.failure ?? 'none', `stage ${failed?.number} ${failed?.name}`).toBe('none');
  expect(report.results.length).toBe(findExercise(id)!.stages.length);
  expect(report.passed).toBe(true);
}

/** Asserts the run failed at stage `stage` (counting from 1), with a message matching every pattern. */
export function expectFailedAt(report: CheckReport, stage: number, ...patterns: RegExp[]): void {
  const last = report.results.at(-1)!;
  expect(report.passed).toBe(false);
  expect({ stage: last.number, failure: last.failure }).toMatchObject({ stage });
  for (const pattern of patterns) expect(last.failure).toMatch(pattern);
  // Every stage before it passed (and was run again: each run starts at stage 1).
  expect(report.results.slice(0, -1).every((result) => result.failure === undefined)).toBe(true);
}
