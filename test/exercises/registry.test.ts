/**
 * The exercises' registry (exercises/checker/exercises.ts) against what is written from it by
 * hand: the README's stage lists, a Makefile target per exercise (so `make help` lists it), a
 * skeleton in TypeScript and C for each; and `make exercise-reset`'s copy, on a scratch folder.
 */

import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../harness/launch.js';
import { helpText } from '../../labs/help.js';
import { EXERCISES, findExercise } from '../../exercises/checker/exercises.js';
import { exercisePath, prepareWork, stageLine } from '../../exercises/checker/main.js';
import { repoFile } from './helpers.js';

describe.each(EXERCISES)('exercise $id', (exercise) => {
  it('has its stages listed in order in the README, and its make target in make help', () => {
    const row = repoFile('README.md').split('\n').find((line) => line.startsWith(`| \`${exercise.id}\` |`));
    expect(row).toBeDefined();
    const stages = row!.split('|').at(-2)!.trim();
    expect(stages).toBe(exercise.stages.map((stage, i) => `${i + 1}. ${stage.name}`).join('; '));
    const listed = helpText(repoFile('Makefile')).split('\n').find((line) => line.startsWith('  make exercise-NN '));
    expect(listed).toContain(exercise.id);
  });

  it('has a skeleton in TypeScript and in C, and one-line stage names that fit the progress line', () => {
    for (const file of ['server.ts', 'server.c']) expect(existsSync(path.join(repoRoot, exercisePath(exercise, 'skeleton', file)))).toBe(true);
    for (const [i, stage] of exercise.stages.entries()) {
      expect(stage.name).not.toContain('\n');
      expect(stageLine({ number: i + 1, name: stage.name, ms: 1234 }, exercise.stages.length).length).toBeLessThanOrEqual(100);
    }
  });
});

it('finds an exercise by EX as typed: "1", "01", "chat"; and no other', () => {
  expect(findExercise('1')?.id).toBe('01');
  expect(findExercise('05')?.folder).toBe('05-epoll');
  expect(findExercise('chat')?.id).toBe('chat');
  expect(findExercise('3')).toBeUndefined();
});

it('makes work/ from the skeleton once, leaves the learner\'s changes alone, and puts the skeleton back on reset', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'exercise-work-'));
  try {
    const exercise = findExercise('01')!;
    cpSync(path.join(repoRoot, exercisePath(exercise, 'skeleton')), path.join(root, exercisePath(exercise, 'skeleton')), { recursive: true });
    const work = (file: string) => path.join(root, exercisePath(exercise, 'work', file));
    const skeleton = readFileSync(path.join(root, exercisePath(exercise, 'skeleton', 'server.c')), 'utf8');
    prepareWork(exercise, false, root);
    expect(readFileSync(work('server.c'), 'utf8')).toBe(skeleton);
    writeFileSync(work('server.c'), '/* my work */\n');
    writeFileSync(work('notes.txt'), 'mine\n');
    prepareWork(exercise, false, root);
    expect(readFileSync(work('server.c'), 'utf8')).toBe('/* my work */\n');
    prepareWork(exercise, true, root);
    expect(readFileSync(work('server.c'), 'utf8')).toBe(skeleton);
    expect(existsSync(work('notes.txt'))).toBe(false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
