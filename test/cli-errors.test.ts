/**
 * An unknown flag is named as it was typed, dashes kept, with a pointer to --help, in every
 * command line of the project (all of them parse through shared/cli.ts's `strictly`): yargs alone
 * says "Unknown argument: bogus", which names no flag anyone typed.
 */

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../bench/lib/launch.js';
import { unknownArguments } from '../shared/cli.js';

describe('unknown flags, in the words typed', () => {
  it.each([
    [['--bogus'], 'Unknown argument: bogus', 'unknown flag --bogus (--help lists every flag)'],
    [['--bogus', '--also'], 'Unknown arguments: bogus, also', 'unknown flags --bogus, --also (--help lists every flag)'],
    [['-x'], 'Unknown argument: x', 'unknown flag -x (--help lists every flag)'],
    [['--no-such-flag'], 'Unknown argument: such-flag', 'unknown flag --no-such-flag (--help lists every flag)'],
    [['--a-b', '3'], 'Unknown arguments: a-b, aB', 'unknown flag --a-b (--help lists every flag)'],
    [['--bogus=3', 'extra'], 'Unknown arguments: bogus, extra', "unknown flag --bogus; unexpected argument 'extra' (--help lists every flag)"],
  ])('%j', (args, yargsSays, said) => {
    expect(unknownArguments(yargsSays, args)).toBe(said);
  });

  it('leaves every other message alone', () => {
    expect(unknownArguments('Not enough arguments following: port', ['--port'])).toBeUndefined();
  });
});

const run = promisify(execFile);
/** Every command line that parses through `strictly`, as a user starts it. */
const COMMANDS: Record<string, { file: string; args: string[]; env?: NodeJS.ProcessEnv }> = {
  'make lab-04 ARGS=--bogus': { file: 'dist/labs/run.js', args: ['04'], env: { ARGS: '--bogus' } },
  'make client': { file: 'dist/labs/client.js', args: ['--bogus'] },
  'make watch': { file: 'dist/bench/watch/main.js', args: ['--bogus'] },
  'make lifecycle': { file: 'dist/bench/lifecycle/main.js', args: ['--bogus'] },
  'the plain-Node reference': { file: 'dist/bench/reference/plain-node.js', args: ['--bogus'] },
};

describe.each(Object.entries(COMMANDS))('%s', (_, { file, args, env }) => {
  it('names --bogus with its dashes and points to --help, in one line, exit status 2', async () => {
    const failed = await run(process.execPath, [path.join(repoRoot, file), ...args], { env: { ...process.env, ...env } }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr.trim()).toMatch(/^[\w-]+: unknown flag --bogus \(--help lists every flag\)$/);
  });
});
