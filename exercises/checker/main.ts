/**
 * `make exercise EX=NN`: checks the learner's server, stage by stage (exercises.ts), and prints
 * each stage's verdict as it comes; the first failure names the mistake and ends the run (exit 1).
 * `make exercise-reset EX=NN` puts the skeleton back in exercises/FOLDER/work/.
 *
 * What is checked (`CMD`, from make or the environment):
 *   unset      the TypeScript skeleton, exercises/FOLDER/work/server.ts (made from skeleton/ on first use)
 *   CMD=c      exercises/FOLDER/work/server.c, compiled with cc into dist/exercises/FOLDER/server
 *   CMD=lab    the lab's own model, which passes every stage
 *   CMD=...    any command that listens on the port in $PORT, run by sh in the repository root
 *
 * Usage: node dist/exercises/checker/main.js EX [--stage N] [--port P] [--reset]
 */

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { repoRoot } from '../../harness/launch.js';
import { EXIT_USAGE, exitOnUserError, UserError } from '../../shared/errors.js';
import { EXERCISES, type Exercise, findExercise } from './exercises.js';
import { check, type StageResult } from './run.js';
import { seconds } from './probe.js';
import { killAllServers } from './server.js';

/** exercises/FOLDER/PART (skeleton or work), from the repository root. */
export const exercisePath = (exercise: Exercise, part: 'skeleton' | 'work', file = '') => path.join('exercises', exercise.folder, part, file);

/** Makes exercises/FOLDER/work/ from skeleton/ (all of it again when `reset`); says so. */
export function prepareWork(exercise: Exercise, reset: boolean, root = repoRoot): void {
  const work = path.join(root, exercisePath(exercise, 'work'));
  if (existsSync(work) && !reset) return;
  rmSync(work, { recursive: true, force: true });
  cpSync(path.join(root, exercisePath(exercise, 'skeleton')), work, { recursive: true });
  console.log(`${exercisePath(exercise, 'work')}/: a fresh copy of the skeleton (server.ts and server.c): your work goes there`);
}

/** The shell command that runs what `cmd` names, for exercise `exercise`. */
export function serverCommand(exercise: Exercise, cmd: string, root = repoRoot): string {
  if (cmd === '') return `'${process.execPath}' --import tsx ${exercisePath(exercise, 'work', 'server.ts')}`;
  // --shutdown-timeout 1: on SIGTERM the lab gives open clients this long to finish (5 s by
  // default); the exercises' servers end at once, and the checker need not wait the 5 s.
  if (cmd === 'lab') return [`'${process.execPath}'`, `dist/labs/${exercise.lab.id}/main.js`, '--port "$PORT" --quiet --shutdown-timeout 1', ...exercise.lab.args].join(' ');
  if (cmd === 'c') {
    const binary = path.join('dist', 'exercises', exercise.folder, 'server');
    mkdirSync(path.join(root, path.dirname(binary)), { recursive: true });
    try {
      execFileSync('cc', ['-Wall', '-Wextra', '-O2', '-o', binary, exercisePath(exercise, 'work', 'server.c')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    } catch {
      throw new UserError(`${exercisePath(exercise, 'work', 'server.c')} does not compile (cc's messages above)`);
    }
    return `./${binary}`;
  }
  return cmd;
}

/** A port the kernel says is free now (it is closed again before the server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The stage's line as it ends: "  2/8 echoes one line ............ ok 0.3 s". */
export function stageLine(result: StageResult, total: number): string {
  const head = `  ${result.number}/${total} ${result.name} `;
  return `${head.padEnd(72, '.')} ${result.failure === undefined ? 'ok' : 'FAILED'} ${seconds(result.ms)}`;
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('make exercise EX=NN')
    .usage('$0 [CMD=...] [STAGE=n]: check your server, stage by stage')
    .option('stage', { type: 'number', describe: 'run stages 1 to this one only' })
    .option('port', { type: 'number', describe: 'the port the server is told to listen on ($PORT); default: a free one' })
    .option('reset', { type: 'boolean', default: false, describe: 'put the skeleton back in exercises/FOLDER/work/ (your changes there are lost)' })
    .strictOptions()
    .fail((message, error) => {
      throw error ?? new UserError(message);
    })
    .parseAsync();
  const name = String(argv._[0] ?? '');
  const exercise = findExercise(name);
  if (!exercise) throw new UserError(`${name === '' ? 'which exercise? EX=' : `there is no exercise ${name}; EX=`}${EXERCISES.map((e) => e.id).join(', ')}`);
  if (argv.reset) return prepareWork(exercise, true);
  const cmd = process.env.CMD ?? '';
  if (cmd === '' || cmd === 'c') prepareWork(exercise, false);
  const command = serverCommand(exercise, cmd);
  const port = argv.port ?? (process.env.PORT ? Number(process.env.PORT) : await freePort());
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new UserError(`PORT must be a port number, not ${process.env.PORT}`);
  const total = Math.min(exercise.stages.length, argv.stage ?? exercise.stages.length);
  console.log(`exercise ${exercise.id}: ${exercise.title}; ${total} stage${total === 1 ? '' : 's'}, each re-run from the first`);
  console.log(`server: ${command}   (PORT=${port})`);
  const report = await check(exercise.stages, {
    command,
    port,
    cwd: repoRoot,
    ...(argv.stage === undefined ? {} : { upTo: argv.stage }),
    onStage: ({ stage, name: stageName, result }) => {
      if (!result) {
        // A stage can take a while: say which one runs, on a terminal only.
        if (process.stdout.isTTY) process.stdout.write(`  ${stage}/${total} ${stageName} ...`);
        return;
      }
      if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
      console.log(stageLine(result, total));
      if (result.failure !== undefined) console.log(`      ${result.failure}`);
    },
  });
  if (report.passed) {
    console.log(`all ${total} stages passed`);
    return;
  }
  const failed = report.results.at(-1)!;
  const output = report.lastOutput.trimEnd();
  if (output) console.log(`the server's last output:\n${output.split('\n').map((line) => `      ${line}`).join('\n')}`);
  const notRun = total - failed.number;
  const rest = notRun === 0 ? '' : notRun === 1 ? `; stage ${total} not run` : `; stages ${failed.number + 1} to ${total} not run`;
  console.log(`stage ${failed.number} failed${rest}`);
  process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Ctrl-C reaches the checker only (the server has a process group of its own): it kills the server's group, then exits.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllServers();
      process.exit(130);
    });
  }
  main().catch((error: unknown) => {
    if (error instanceof UserError) exitOnUserError('make exercise')(error);
    console.error(error);
    process.exit(EXIT_USAGE);
  });
}
