/**
 * Starts a lab's real command-line entry (`node dist/labs/ID/main.js`) as a child process on a
 * free port, and stops it, children included. Tests, the benchmark and the backlog experiment all
 * launch labs through here, so they run the same program a user runs with `make lab-NN`.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree } from './processes.js';

/** The repository root: the nearest folder above this file with a package.json (also from dist/). */
export const repoRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();


export function labEntry(id: string): string {
  return path.join(repoRoot, 'dist', 'labs', id, 'main.js');
}

/** Generous: a cold Node start on a busy 2-core machine can take a second or more. */
const START_TIMEOUT_MS = 20_000;

export interface LabProcess {
  readonly id: string;
  readonly pid: number;
  readonly host: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** Everything printed so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with the first stdout line matching `pattern` (already printed or future). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits for exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<LabProcess>();

export interface Launch {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

/** Runs an entry to completion (for bad flags, --help): output and exit code. */
export function runEntry(id: string, args: string[], timeoutMs = START_TIMEOUT_MS): Promise<Launch> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [labEntry(id), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${id} ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      child.stdout.once('end', () => resolve({ stdout, stderr, code }));
      if (child.stdout.readableEnded) resolve({ stdout, stderr, code });
    });
  });
}

export async function startLab(id: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<LabProcess> {
  return startListening(id, process.execPath, [labEntry(id), '--port', '0', ...args], env);
}

/**
 * Starts a lab as `startLab` does, but through `prefix` (a program that ends by exec'ing its
 * arguments: the limits experiment's shell that joins a cgroup first), so the lab's first
 * instruction already runs where the prefix put it. The pid is the lab's: exec keeps it.
 */
export async function startLabThrough(prefix: readonly string[], id: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<LabProcess> {
  return startListening(id, prefix[0]!, [...prefix.slice(1), process.execPath, labEntry(id), '--port', '0', ...args], env);
}

/**
 * Starts any program that takes `--port 0` and prints the labs' `listening on HOST:PORT` line
 * (the benchmark's C reference server), with the same output capture, stop and cleanup as a lab.
 */
/**
 * Starts a Node script of the harness's own (the plain-Node reference server, compiled into dist/)
 * with `--port 0`, with the same output capture, stop and cleanup as a lab.
 */
export function startNodeScript(id: string, script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<LabProcess> {
  return startListening(id, process.execPath, [script, '--port', '0', ...args], env);
}

export function startExecutable(id: string, file: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<LabProcess> {
  return startListening(id, file, ['--port', '0', ...args], env);
}

async function startListening(id: string, file: string, argv: string[], env: NodeJS.ProcessEnv): Promise<LabProcess> {
  const child = spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  const lineWaiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const waiter of [...lineWaiters]) {
      const line = stdout.split('\n').find((l) => waiter.pattern.test(l));
      if (line !== undefined) {
        lineWaiters.splice(lineWaiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));

  const waitForLine = (pattern: RegExp, timeoutMs = START_TIMEOUT_MS) =>
    new Promise<string>((resolve, reject) => {
      const line = stdout.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) return resolve(line);
      const timer = setTimeout(
        () => reject(new Error(`${id}: no line matching ${pattern} within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
        timeoutMs,
      );
      const waiter = {
        pattern,
        resolve: (l: string) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      lineWaiters.push(waiter);
      void exited.then(() => {
        if (!lineWaiters.includes(waiter)) return;
        clearTimeout(timer);
        reject(new Error(`${id} exited before printing ${pattern}.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      });
    });

  const lab: LabProcess = {
    id,
    pid: child.pid!,
    host: '',
    port: 0,
    child,
    output: () => ({ stdout, stderr }),
    waitForLine,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => killTree(child.pid!), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      running.delete(lab);
      return result;
    },
  };
  running.add(lab);
  const line = await waitForLine(/listening on /);
  const match = /listening on (\S+):(\d+)/.exec(line)!;
  return Object.assign(lab, { host: match[1]!, port: Number(match[2]) });
}

/** SIGKILLs a process and every descendant (a forking lab's children outlive a killed parent otherwise). */
export function killTree(pid: number): void {
  for (const p of processTree(pid).reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** For afterEach/afterAll: whatever a failed test left running is killed, children included. */
export async function stopAllLabs(): Promise<void> {
  await Promise.all([...running].map((lab) => {
    killTree(lab.pid);
    return lab.stop('SIGKILL', 5_000);
  }));
}
