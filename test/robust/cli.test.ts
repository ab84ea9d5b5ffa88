/**
 * Robust suite, defaults and the command line (case 13): a lab binds 127.0.0.1 unless told
 * otherwise, and a port in use or a bad flag gets one line and exit status 2, never a stack trace.
 * Every bad value below is refused by the one parser every lab shares (shared/cli.ts): its
 * wording is checked there in-process (test/cli-errors.test.ts); here each lab's real entry shows
 * it turns a refusal into one line, and its own --help (run once per lab) what it offers.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { stopAllLabs, type Launch } from '../../harness/launch.js';
import { defaultVariantCases, labCases } from '../helpers/labs.js';
import { stopCleanly } from './helpers/nothing-lost.js';
import { listeningAddress } from '../../harness/sockets.js';

afterEach(async () => {
  await stopAllLabs();
});

/**
 * Flags every lab takes for its limits, with the defaults --help must show; --max-conns only
 * where a connection cap applies (not where the kernel's accept queue is the only queue).
 */
const LIMIT_FLAGS = ['max-pending', 'idle-timeout', 'max-lifetime', 'shutdown-timeout', 'header-timeout', 'max-header-bytes', 'max-body-bytes'];

/** A lab's `--help`, run once for every test of this file that reads it. */
const helps = new Map<string, Promise<Launch>>();
function helpOf(id: string, run: (args: string[]) => Promise<Launch>): Promise<Launch> {
  if (!helps.has(id)) helps.set(id, run(['--help']));
  return helps.get(id)!;
}

describe.each(defaultVariantCases())('lab %s', ({ id, traits, start, run }) => {
  it('case 13: without --host it binds 127.0.0.1 (as the kernel reports it), whatever the HOST environment variable says', async () => {
    const lab = await start(['--quiet'], { HOST: '0.0.0.0' });
    expect(lab.host).toBe('127.0.0.1');
    expect(listeningAddress(lab.port)).toBe('127.0.0.1');
    await stopCleanly(lab);
  });

  it('case 13: a port in use, an unknown flag and a value out of range each get one line on stderr, exit status 2, no stack trace', { timeout: 120_000 }, async () => {
    const lab = await start(['--quiet']);
    // All at once: each is its own process, and none depends on another.
    const cases = [['--port', String(lab.port)], ['--no-such-flag'], ['--port', 'abc']];
    const results = await Promise.all(cases.map((args) => run(args)));
    for (const [i, args] of cases.entries()) {
      const failed = results[i]!;
      const what = `${id} ${args.join(' ')}: ${JSON.stringify(failed.stderr)}`;
      expect(failed.code, what).toBe(2);
      expect(failed.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(failed.stderr, what).not.toMatch(/^\s+at /m);
      expect(failed.stdout, what).toBe('');
    }
    expect(results[0]!.stderr).toContain('already in use');
    expect(results[1]!.stderr.trim()).toBe(`${id}: unknown flag --no-such-flag (--help lists every flag)`);
    expect(results[2]!.stderr.trim()).toMatch(/--port must be a whole number from 0 to 65535, got 'abc'$/);
    await stopCleanly(lab);
  });

  it('case 13: --help lists every limit flag with its default', async () => {
    const help = await helpOf(id, run);
    expect(help.code).toBe(0);
    // One block per option: its line, and the line its [default: …] wraps onto if it is long.
    const blocks = help.stdout.split(/\n(?= {2}--)/);
    for (const flag of traits.kernelQueueOnly ? LIMIT_FLAGS : ['max-conns', ...LIMIT_FLAGS]) {
      const block = blocks.find((b) => b.trimStart().startsWith(`--${flag} `));
      expect(block, `--${flag} in --help`).toMatch(/\[default: \d+\]/);
    }
  });
});

describe.each(defaultVariantCases())('lab %s', ({ id, run, info }) => {
  // Issue 27: lab 07's --help described the files protocol, which it refuses.
  it('case 13: --help describes exactly the protocols the lab serves (labs/index.ts), and --root only with files', async () => {
    const help = await helpOf(id, run);
    expect(help.code).toBe(0);
    const block = help.stdout.split(/\n(?= {2}--)/).find((b) => b.trimStart().startsWith('--protocol '))!.replace(/\s+/g, ' ');
    for (const protocol of ['echo', 'http', 'chat', 'files'] as const) {
      expect(block.includes(`${protocol}: `), `${protocol} in ${JSON.stringify(block)}`).toBe(info.protocols.includes(protocol));
    }
    expect(help.stdout.includes('--root'), '--root in --help').toBe(info.protocols.includes('files'));
  });
});

describe.each(labCases((lab) => lab.traits.kernelQueueOnly))('lab %s, where the kernel accept queue is the only queue', ({ id, run }) => {
  it('case 13: --help does not offer --max-conns, and giving it gets one line saying it does not apply', async () => {
    const help = await helpOf(id, run);
    expect(help.code).toBe(0);
    expect(help.stdout).not.toContain('--max-conns');
    for (const args of [['--max-conns', '4'], ['--max-conns=4']]) {
      const failed = await run(args);
      expect(failed.code).toBe(2);
      expect(failed.stderr.trim().split('\n')).toHaveLength(1);
      expect(failed.stderr).toContain('--max-conns does not apply');
    }
  });
});
