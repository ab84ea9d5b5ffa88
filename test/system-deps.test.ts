/**
 * scripts/system-deps, the one list of the system tools the tests need: run with a PATH that
 * holds only what each case gives it (fake `id` and `apt-get` scripts), it installs what is
 * missing as root with apt-get, and otherwise stops with one line naming the packages and the
 * command. `make test` and .ci/run both run it.
 */

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/launch.js';

const SCRIPT = path.join(repoRoot, 'scripts', 'system-deps');
const ALL = 'strace iproute2 gcc libc6-dev util-linux diffutils systemd';
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A PATH of one directory: bash, the named tools found on this machine, and `id` answering `uid`. */
function fakePath(uid: number, tools: string[], aptGet = false): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'system-deps-'));
  dirs.push(dir);
  for (const tool of ['bash', ...tools]) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(found, path.join(dir, tool));
  }
  const script = (name: string, body: string) => {
    writeFileSync(path.join(dir, name), `#!${path.join(dir, 'bash')}\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  };
  script('id', `echo ${uid}`);
  if (aptGet) script('apt-get', `echo "$*" >> ${path.join(dir, 'apt-get.log')}`);
  return dir;
}

const run = (dir: string) => spawnSync(path.join(dir, 'bash'), [SCRIPT], { env: { PATH: dir }, encoding: 'utf8' });

describe('scripts/system-deps (issue 26, item 11)', () => {
  it('everything there: nothing printed, status 0', () => {
    const dir = fakePath(1000, ['strace', 'ss', 'cc', 'prlimit', 'diff', 'systemd-analyze']);
    expect(run(dir)).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });

  it('not root: one line naming every missing package and the command, status 2', () => {
    const dir = fakePath(1000, ['ss']);
    const result = run(dir);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('the tests need strace gcc libc6-dev util-linux diffutils systemd: install them with `sudo apt-get install strace gcc libc6-dev util-linux diffutils systemd`, then run make test again\n');
  });

  it('root with apt-get: the missing packages are installed with it', () => {
    const dir = fakePath(0, [], true);
    const result = run(dir);
    expect(result.status).toBe(0);
    expect(readFileSync(path.join(dir, 'apt-get.log'), 'utf8')).toBe(`update -qq\ninstall -y -qq ${ALL}\n`);
  });

  it('make test and .ci/run both run it', () => {
    expect(readFileSync(path.join(repoRoot, 'Makefile'), 'utf8')).toMatch(/^test: .*\n(?:#.*\n)*\t@scripts\/system-deps$/m);
    expect(readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8')).toMatch(/^scripts\/system-deps$/m);
  });
});
