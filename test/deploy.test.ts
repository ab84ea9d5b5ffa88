/**
 * deploy/iolab@.service, as systemd itself reads it: `systemd-analyze verify` finds nothing to
 * say, and `systemd-analyze security --offline=yes` scores the hardened unit 2.5 or better ("OK";
 * a bare unit scores 9.6, "UNSAFE"). Generated only where systemd-analyze is installed (.ci/run
 * installs it); otherwise test/needs-style, one line says why.
 */

import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../harness/launch.js';

const run = promisify(execFile);
const unit = path.join(repoRoot, 'deploy', 'iolab@.service');

const analyzer = (() => {
  try {
    return execFileSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    console.log('deploy/iolab@.service not checked: systemd-analyze is not installed (apt-get install systemd)');
    return undefined;
  }
})();

describe.runIf(analyzer !== undefined)('deploy/iolab@.service', () => {
  it('systemd-analyze verify has nothing to say', async () => {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', unit]);
    expect(stdout + stderr).toBe('');
  });

  it('systemd-analyze security --offline=yes scores an instance 2.5 or better ("OK")', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-unit-'));
    try {
      // An instance, as systemd would load it for `systemctl start iolab@04-evented`.
      const instance = path.join(dir, 'iolab@04-evented.service');
      copyFileSync(unit, instance);
      const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', instance]);
      const [, score, verdict] = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(stdout) ?? [];
      expect(verdict).toBe('OK');
      expect(Number(score)).toBeLessThanOrEqual(2.5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
