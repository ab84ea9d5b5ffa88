/**
 * Robust suite, defaults and the command line (case 13): a lab binds 127.0.0.1 unless told
 * otherwise, and a port in use or a bad flag gets one line and exit status 2, never a stack trace.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { LAB_IDS, runEntry, startLab, stopAllLabs } from '../../bench/lib/launch.js';
import { stopCleanly } from './helpers/nothing-lost.js';
import { listeningAddress } from '../../bench/observe/sockets.js';

afterEach(async () => {
  await stopAllLabs();
});

/** Flags every lab takes for its limits, with the defaults --help must show. */
const LIMIT_FLAGS = ['max-conns', 'max-pending', 'idle-timeout', 'max-lifetime', 'shutdown-timeout', 'header-timeout', 'max-header-bytes', 'max-body-bytes'];

const BAD_FLAGS: string[][] = [
  ['--port', '70000'],
  ['--port', 'http'],
  ['--max-conns', '0'],
  ['--max-pending', '-1'],
  ['--idle-timeout', '0'],
  ['--shutdown-timeout', 'soon'],
  ['--protocol', 'gopher'],
  ['--max-header-bytes', '10'],
  ['--no-such-flag'],
];

describe.each(LAB_IDS)('lab %s', (id) => {
  it('case 13: without --host it binds 127.0.0.1 (as the kernel reports it), whatever the HOST environment variable says', async () => {
    const lab = await startLab(id, ['--quiet'], { HOST: '0.0.0.0' });
    expect(lab.host).toBe('127.0.0.1');
    expect(listeningAddress(lab.port)).toBe('127.0.0.1');
    await stopCleanly(lab);
  });

  it(`case 13: a port in use and ${BAD_FLAGS.length} bad flags each get one line on stderr, exit status 2, no stack trace`, { timeout: 120_000 }, async () => {
    const lab = await startLab(id, ['--quiet']);
    for (const args of [['--port', String(lab.port)], ...BAD_FLAGS]) {
      const run = await runEntry(id, args);
      const what = `${id} ${args.join(' ')}: ${JSON.stringify(run.stderr)}`;
      expect(run.code, what).toBe(2);
      expect(run.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(run.stderr, what).not.toMatch(/^\s+at /m);
      expect(run.stdout, what).toBe('');
    }
    await stopCleanly(lab);
  });

  it('case 13: --help lists every limit flag with its default', async () => {
    const help = await runEntry(id, ['--help']);
    expect(help.code).toBe(0);
    // One block per option: its line, and the line its [default: …] wraps onto if it is long.
    const blocks = help.stdout.split(/\n(?= {2}--)/);
    for (const flag of LIMIT_FLAGS) {
      const block = blocks.find((b) => b.trimStart().startsWith(`--${flag} `));
      expect(block, `--${flag} in --help`).toMatch(/\[default: \d+\]/);
    }
  });
});
