/**
 * `make lab-NN` and `make client` through their real programs: labs/run.ts finds a lab by number
 * in the registry and turns make's variables (passed in the environment) into the lab's flags;
 * an unknown number is one line and exit status 2. The client describes itself in --help.
 */

import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EXPERIMENTS } from '../bench/experiments.js';
import { repoRoot } from '../harness/launch.js';
import { LABS } from '../labs/index.js';
import { labFlags } from '../labs/make-flags.js';
import { UserError } from '../shared/errors.js';

const RUN = path.join(repoRoot, 'dist', 'labs', 'run.js');
const CLIENT = path.join(repoRoot, 'dist', 'labs', 'client.js');

const children = new Set<ReturnType<typeof spawn>>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/** Runs a program to completion with `env` added: its output and exit status. */
function runProgram(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('make lab-NN (labs/run.ts)', () => {
  it('a number the registry does not list gets one line naming the labs, exit status 2', async () => {
    const missing = String(LABS.length + 1).padStart(2, '0');
    const result = await runProgram(RUN, [missing]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`there is no lab ${missing}`);
    for (const lab of LABS) expect(result.stderr).toContain(lab.id);
  });

  it.each(LABS.map((lab) => lab.id))('%s: make variables become its flags (PORT=abc reaches --port)', async (id) => {
    const result = await runProgram(RUN, [id.slice(0, 2)], { PORT: 'abc', QUIET: '1', ARGS: '' });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(`${id}: --port must be a whole number from 0 to 65535, got 'abc'`);
  });

  it.each(LABS.flatMap((lab) => Object.entries(lab.makeVariables).map(([variable, flag]) => ({ id: lab.id, variable, flag }))))(
    '$id: its own make variable $variable becomes $flag',
    async ({ id, variable, flag }) => {
      const result = await runProgram(RUN, [id.slice(0, 2)], { [variable]: 'not-a-number' });
      expect(result.code).toBe(2);
      expect(result.stderr.trim()).toContain(`${flag} must be`);
      expect(result.stderr.trim()).toContain("got 'not-a-number'");
    },
  );

  it('ARGS passes further flags through (ARGS=--help shows the lab\'s help)', async () => {
    const lab = LABS[LABS.length - 1]!;
    const result = await runProgram(RUN, [lab.id.slice(0, 2)], { ARGS: '--help' });
    expect(result.code).toBe(0);
    // yargs wraps the usage text to the terminal's width.
    expect(result.stdout.replace(/\s+/g, ' ')).toContain(lab.model);
  });
});

describe('a setting for another lab (issue 26, item 3): refused, never ignored', () => {
  /** Every lab that takes `variable`, as the refusal names them (THREADS: labs 03 and 08). */
  const takers = (variable: string, value: string) =>
    LABS.filter((lab) => variable in lab.makeVariables)
      .map((lab) => `lab ${lab.id} (make lab-${lab.id.slice(0, 2)} ${variable}=${value})`)
      .join(' and ');
  // Every lab against every variable only other labs take: the pure function, no process.
  const foreign = LABS.flatMap((lab) =>
    [...new Set(LABS.flatMap((other) => Object.keys(other.makeVariables)))].filter((variable) => !(variable in lab.makeVariables)).map((variable) => ({ lab, variable })),
  );
  it.each(foreign.map((c) => ({ ...c, id: c.lab.id, takerIds: takers(c.variable, 'x') })))('$id refuses $variable, naming $takerIds', ({ lab, variable }) => {
    expect(() => labFlags(lab, { [variable]: 'x' })).toThrow(UserError);
    expect(() => labFlags(lab, { [variable]: 'x' })).toThrow(`${variable} is a setting of ${takers(variable, 'x')}, not of lab ${lab.id}`);
    // Unset or empty (`make lab-NN MUX=`): nothing to refuse.
    expect(labFlags(lab, { [variable]: '' })).toEqual([]);
  });

  it.each([
    ['04', 'MUX', 'poll', '05-event-loop'],
    ['01', 'THREADS', '4', '03-worker-pool'],
    ['04', 'BALANCE', 'reuseport', '06-loop-per-core'],
    ['03', 'TRIGGER', 'edge', '05-event-loop'],
    ['05', 'SUBMIT', 'each', '07-completion'],
  ])('make lab-%s %s=%s: one line naming lab %s, exit status 2, nothing started', async (lab, variable, value, taker) => {
    const result = await runProgram(RUN, [lab, '--port', '0'], { [variable]: value, QUIET: '' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^make lab-${lab}: ${variable} is a setting of lab ${taker} \\(make lab-${taker.slice(0, 2)} ${variable}=${value}\\)`));
    expect(result.stderr).toContain(`${variable} is a setting of ${takers(variable, value)}, not of lab ${lab}-`);
  });

  it('flags after the lab id reach the lab: one it does not take is refused, one it takes is read', async () => {
    const unknown = await runProgram(RUN, ['04', '--port', '0', '--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('04-evented: unknown flag --no-such-flag (--help lists every flag)');
    const port = await runProgram(RUN, ['04', '--port', 'abc'], { PORT: '' });
    expect(port.code).toBe(2);
    expect(port.stderr.trim()).toBe("04-evented: --port must be a whole number from 0 to 65535, got 'abc'");
  });
});

describe('make help, plain make and make lab- (issue 26, item 4)', () => {
  const make = (...args: string[]) => spawnSync('make', ['-s', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });

  it('plain make lists every lab, every variable and every experiment on one screen (80 columns, 40 lines)', () => {
    const result = make();
    expect(result.status).toBe(0);
    expect(make('help').stdout).toBe(result.stdout);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.length).toBeLessThanOrEqual(40);
    expect(lines.filter((line) => line.length > 80)).toEqual([]);
    for (const lab of LABS) {
      expect(result.stdout).toContain(`make lab-${lab.id.slice(0, 2)}  ${lab.model.split(';')[0]!.split(' ').slice(0, 3).join(' ')}`);
      for (const variable of Object.keys(lab.makeVariables)) expect(result.stdout).toMatch(new RegExp(`\\b${variable}\\b`));
    }
    for (const variable of ['HOST', 'PORT', 'BACKLOG', 'PROTOCOL', 'WORK_US', 'ROOT', 'QUIET', 'ARGS']) expect(result.stdout).toContain(variable);
    // Every experiment (bench/experiments.ts) has its make target listed with what it does
    // (bench/servers/ is `make bench`: a target may differ from its folder's name).
    expect(EXPERIMENTS.length).toBeGreaterThan(0);
    for (const experiment of EXPERIMENTS) expect(result.stdout).toMatch(new RegExp(`^  make ${experiment.target ?? experiment.name} +\\S`, 'm'));
  });

  it('make lab- (no number): one line naming the labs, exit status 2, no lab `.o`', () => {
    const result = make('lab-');
    expect(result.status).toBe(2);
    expect(result.stderr).not.toContain('.o');
    expect(result.stderr).toContain(`make lab-: which lab? make lab-NN; the labs are ${LABS.map((lab) => lab.id).join(', ')}`);
  });
});

describe('make client (labs/client.ts)', () => {
  it('--help says what the client does', async () => {
    const result = await runProgram(CLIENT, ['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('echoes what you type');
  });
});
