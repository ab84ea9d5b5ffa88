/**
 * The top-level README's promise, checked: the diff of two labs' server files that it prints is
 * the diff the files give today, byte for byte, so the README cannot show a smaller difference
 * between two models than the code has.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

describe('README diffs', () => {
  const diffs = shownDiffs();

  it('shows at least the diff of labs 04 and 03, in full and without header comments', () => {
    expect(diffs.map((d) => d.command)).toEqual([
      "diff -I '^ \\*' labs/04-evented/server.ts labs/03-worker-pool/server.ts",
      'diff labs/04-evented/server.ts labs/03-worker-pool/server.ts',
    ]);
  });

  for (const { command, shown } of diffs) {
    it(`prints what \`${command}\` prints today`, () => {
      expect(shown).toBe(run(command));
    });
  }
});
