/**
 * An unknown flag is named as it was typed, dashes kept, with a pointer to --help, in every
 * command line of the project (all of them parse through shared/cli.ts's `strictly`): yargs alone
 * says "Unknown argument: bogus", which names no flag anyone typed. A flag that takes a value and
 * was given none, or was given twice, is one line too: yargs alone binds the default port for
 * `--port`, and reports `--port 1 --port 2` as "got '2'".
 */

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot, startLab, stopAllLabs } from '../harness/launch.js';
import { labInfo } from '../labs/index.js';
import { labFlags } from '../labs/make-flags.js';
import { DEFAULTS, parseArgs, unknownArguments } from '../shared/cli.js';
import { UserError } from '../shared/errors.js';
import { closeAllClients, connect } from './helpers/tcp.js';
import { eventually } from './helpers/util.js';

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
  'make watch': { file: 'dist/tools/watch/main.js', args: ['--bogus'] },
  'make lifecycle': { file: 'dist/tools/lifecycle/main.js', args: ['--bogus'] },
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

/** What parsing `args` for lab 04 threw, as the one line the user would see (undefined: it parsed). */
function refusal(args: string[]): string | undefined {
  try {
    parseArgs(labInfo('04-evented'), args);
    return undefined;
  } catch (error) {
    if (error instanceof UserError) return error.message;
    throw error;
  }
}

// The bad values robust case 13 once ran through every lab's entry: the parser every lab shares
// refuses each in one line that names the flag and what was given (each lab's entry printing such a
// line, exit status 2, is test/robust/cli.test.ts).
describe('a bad value, refused in the words of the flag', () => {
  it.each([
    [['--port', '70000'], '--port must be a whole number from 0 to 65535, got 70000'],
    [['--port', 'http'], "--port must be a whole number from 0 to 65535, got 'http'"],
    [['--max-conns', '0'], '--max-conns must be a whole number from 1 to 9007199254740991, got 0'],
    [['--max-pending', '-1'], '--max-pending must be a whole number from 1 to 9007199254740991, got -1'],
    [['--idle-timeout', '0'], '--idle-timeout must be a positive number of seconds, got 0'],
    [['--shutdown-timeout', 'soon'], "--shutdown-timeout must be a positive number of seconds, got 'soon'"],
    [['--protocol', 'gopher'], "--protocol must be echo, http, chat or files, got 'gopher'"],
    [['--max-header-bytes', '10'], '--max-header-bytes must be a whole number from 64 to 9007199254740991, got 10'],
  ])('%j', (args, said) => {
    expect(refusal(args)).toBe(said);
  });
});

describe('a flag that takes a value, given none', () => {
  // Every flag of lab 04 that takes a value, each with the default the message offers (--root has none).
  const VALUED: Record<string, unknown> = {
    host: DEFAULTS.host,
    port: DEFAULTS.port,
    backlog: DEFAULTS.backlog,
    protocol: DEFAULTS.protocol,
    'work-us': DEFAULTS.workUs,
    'shutdown-timeout': DEFAULTS.shutdownTimeout,
    'max-conns': DEFAULTS.maxConns,
    'max-pending': DEFAULTS.maxPending,
    'idle-timeout': DEFAULTS.idleTimeout,
    'max-lifetime': DEFAULTS.maxLifetime,
    'header-timeout': DEFAULTS.headerTimeout,
    'max-header-bytes': DEFAULTS.maxHeaderBytes,
    'max-body-bytes': DEFAULTS.maxBodyBytes,
    root: undefined,
  };

  it.each(Object.entries(VALUED))('--%s: last, before another flag, or as --NAME=: refused, one line each', (name, fallback) => {
    const said = `--${name} needs a value${fallback === undefined ? '' : ` (leave it out for the default, ${String(fallback)})`}`;
    for (const args of [[`--${name}`], [`--${name}`, '--quiet'], [`--${name}=`]]) expect(refusal(args), args.join(' ')).toBe(said);
  });

  it('a switch needs none, and a negative number is a value (that the range check then refuses)', () => {
    expect(refusal(['--quiet', '--no-nodelay'])).toBeUndefined();
    expect(refusal(['--port', '-1'])).toBe('--port must be a whole number from 0 to 65535, got -1');
  });
});

describe('a flag that takes a value, given twice', () => {
  it.each([
    [['--port', '1', '--port', '2'], "--port given twice ('1', '2'): give it once"],
    [['--port=1', '--port', '2', '--port=3'], "--port given 3 times ('1', '2', '3'): give it once"],
    [['--port', 'abc', '--port', '2'], "--port given twice ('abc', '2'): give it once"],
    [['--protocol', 'http', '--protocol', 'echo'], "--protocol given twice ('http', 'echo'): give it once"],
    // Typed once camel-cased: yargs still gathers both, and the values are all there is to show.
    [['--workUs', '5', '--work-us', '6'], '--work-us given twice (5, 6): give it once'],
  ])('%j', (args, said) => {
    expect(refusal(args)).toBe(said);
  });

  it('a switch given twice is not an error: the last one wins, as yargs has it', () => {
    expect(refusal(['--quiet', '--quiet', '--no-nodelay', '--nodelay'])).toBeUndefined();
  });
});

/**
 * Runs `file` to its end; its exit status and both outputs. A lab that took the flags and started
 * serving (what `--port` alone used to do) is killed after a generous bound, and fails with code null.
 */
async function exits(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(repoRoot, file), ...args], { env: { ...process.env, ...env }, timeout: 20_000, killSignal: 'SIGKILL' }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    ({ code, stdout, stderr }: { code: number | null; stdout: string; stderr: string }) => ({ code, stdout, stderr }),
  );
}

describe('no value or a value twice, through the real entries: one line on stderr, exit status 2, nothing on stdout', () => {
  const lab = (id: string) => `dist/labs/${id}/main.js`;
  // One per lab's own value flag too: strictly checks whatever options the parser was given.
  const CASES: [string, string, string[], NodeJS.ProcessEnv, string][] = [
    ['04 --port', lab('04-evented'), ['--port'], {}, '04-evented: --port needs a value (leave it out for the default, 8080)'],
    ['make lab-04 ARGS=--port', 'dist/labs/run.js', ['04'], { ARGS: '--port' }, '04-evented: --port needs a value (leave it out for the default, 8080)'],
    ['04 --port 1 --port 2', lab('04-evented'), ['--port', '1', '--port', '2'], {}, "04-evented: --port given twice ('1', '2'): give it once"],
    ['make lab-04 PORT=1 ARGS="--port 2"', 'dist/labs/run.js', ['04'], { PORT: '1', ARGS: '--port 2' }, "04-evented: --port given twice ('1', '2'): give it once"],
    ['01 --copy', lab('01-serial'), ['--copy'], {}, '01-serial: --copy needs a value (leave it out for the default, sendfile)'],
    ['03 --threads', lab('03-worker-pool'), ['--threads'], {}, `03-worker-pool: --threads needs a value (leave it out for the default, ${os.availableParallelism()})`],
    ['05 --mux', lab('05-event-loop'), ['--mux'], {}, '05-event-loop: --mux needs a value (leave it out for the default, epoll)'],
    ['06 --workers 1 --workers 2', lab('06-loop-per-core'), ['--workers', '1', '--workers', '2'], {}, "06-loop-per-core: --workers given twice ('1', '2'): give it once"],
    ['07 --submit', lab('07-completion'), ['--submit'], {}, '07-completion: --submit needs a value (leave it out for the default, batch)'],
    ['make client PORT=', 'dist/labs/client.js', ['--port='], {}, 'client: --port needs a value (leave it out for the default, 8080)'],
  ];

  it(`${CASES.length} command lines`, async () => {
    // All at once: each is a Node start-up that ends at its flags (about 0.4 s each here).
    const results = await Promise.all(CASES.map(([, file, args, env]) => exits(file, args, env)));
    CASES.forEach(([what, , , , said], i) => {
      expect(results[i], what).toEqual({ code: 2, stdout: '', stderr: `${said}\n` });
    });
  });
});

describe('a lab whose log nobody reads any more (make lab-04 | head -1)', () => {
  afterEach(async () => {
    closeAllClients();
    await stopAllLabs();
  });

  it('goes on serving with stdout a closed pipe, says so once on stderr, and exits 0 on SIGTERM', async () => {
    // Not --quiet: each client's connect and disconnect is a line written to the closed pipe.
    const lab = await startLab('04-evented');
    // Our end of the lab's stdout goes, as head's does once it has its line: the lab's next write
    // to it fails with EPIPE.
    lab.child.stdout!.destroy();
    const echo = async (text: string) => {
      const client = await connect(lab.port);
      client.socket.end(text);
      expect((await client.waitForEnd()).toString()).toBe(text);
    };
    await echo('first, into a log with no reader\n');
    const note = '[04-evented] stdout is closed (EPIPE): log lines are dropped from here on; the server goes on serving\n';
    // Whatever comes first on stderr (a stack trace, before this fix) is then compared whole.
    await eventually(() => (lab.output().stderr.includes('\n') ? true : undefined), 10_000, 'a line on stderr');
    expect(lab.output().stderr).toBe(note);
    // After the failed write, further lines (this client's) are not written at all.
    await echo('second, after the log was found closed\n');
    expect(await lab.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(lab.output().stderr).toBe(note);
  });
});

describe('bench/backlog/by-hand.md, terminal 1', () => {
  afterEach(async () => {
    await stopAllLabs();
  });

  it('shows what `make lab-01 BACKLOG=1` prints first: the listening line, with nothing before it', async () => {
    // make's recipes print nothing themselves (the build goes to stderr), so the first stdout line
    // is the lab's; started here with the flags make passes for BACKLOG=1 (labs/make-flags.ts).
    const text = readFileSync(path.join(repoRoot, 'bench/backlog/by-hand.md'), 'utf8');
    const shown = /^\$ make lab-01 BACKLOG=1\n(.*)$/m.exec(text)?.[1];
    const lab = await startLab('01-serial', labFlags(labInfo('01-serial'), { BACKLOG: '1' }));
    const printed = lab.output().stdout.split('\n')[0]!;
    const normalised = (line: string) => line.replace(/( listening on [^\s:]+):\d+ /, '$1:PORT ').replace(/; pid \d+\)$/, '; pid PID)');
    expect(normalised(shown ?? '(no `$ make lab-01 BACKLOG=1` line)')).toBe(normalised(printed));
  });
});
