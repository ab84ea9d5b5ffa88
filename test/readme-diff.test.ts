/**
 * The top-level README's promise, checked: the diff of two labs' server files that it prints is
 * the diff the files give today, byte for byte, so the README cannot show a smaller difference
 * between two models than the code has. And the promise itself: the by-hand labs 05 and 07,
 * comments and blank lines left out, differ in fewer than 250 lines.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/launch.js';

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

/** Every `diff …` command the README shows in an sh block, with the diff block that follows it. */
function shownDiffs(): { command: string; shown: string }[] {
  const found: { command: string; shown: string }[] = [];
  const pattern = /```sh\n(diff [^\n]+)\n```\n\n```diff\n([\s\S]*?)```/g;
  for (const match of readme.matchAll(pattern)) found.push({ command: match[1]!, shown: match[2]! });
  return found;
}

/** Runs a `diff ARGS…` command line from the README (single-quoted arguments only). */
function run(command: string): string {
  const args = [...command.slice('diff '.length).matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  const result = spawnSync('diff', args, { cwd: repoRoot, encoding: 'utf8' });
  // diff exits 1 when the files differ, which is the point here; 2 is trouble.
  expect(result.status, result.stderr).toBe(1);
  return result.stdout;
}

/** A TypeScript file's code: block and line comments and blank lines left out. */
export function codeOnly(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('//'))
    .map((line) => line.trimEnd())
    .join('\n');
}

/** How many lines `diff` adds or removes between two files' code (codeOnly). */
function codeLinesChanged(a: string, b: string): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'readme-diff-'));
  try {
    const [left, right] = [a, b].map((file, i) => {
      const copy = path.join(dir, `${i}.ts`);
      writeFileSync(copy, `${codeOnly(readFileSync(path.join(repoRoot, file), 'utf8'))}\n`);
      return copy;
    });
    const result = spawnSync('diff', [left!, right!], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(1);
    return result.stdout.split('\n').filter((line) => line.startsWith('< ') || line.startsWith('> ')).length;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('README diffs', () => {
  const diffs = shownDiffs();

  it('shows the diff of labs 04 and 03, in full and without header comments, and of labs 05 and 07 without comments', () => {
    expect(diffs.map((d) => d.command)).toEqual([
      "diff -I '^ \\*' labs/04-evented/server.ts labs/03-worker-pool/server.ts",
      'diff labs/04-evented/server.ts labs/03-worker-pool/server.ts',
      "diff -B -I '^ *\\(/\\*\\*\\|\\*\\|//\\)' labs/05-event-loop/server.ts labs/07-completion/server.ts",
    ]);
  });

  it('labs 05 and 07 differ in fewer than 250 code lines (comments and blank lines left out)', () => {
    const changed = codeLinesChanged('labs/05-event-loop/server.ts', 'labs/07-completion/server.ts');
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThan(250);
  });

  for (const { command, shown } of diffs) {
    it(`prints what \`${command}\` prints today`, () => {
      expect(shown).toBe(run(command));
    });
  }
});
