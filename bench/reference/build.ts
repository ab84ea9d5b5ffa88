/**
 * Builds the benchmark's C programs with the system's `cc` into bench/build/ (ignored by git),
 * once per harness run and only when a source is newer than its binary: the reference servers
 * (bench/reference/echo-epoll.c, and echo-threads.c beside lab 08) and the C load generators
 * (bench/load/c-echo-client.c, c-chat-client.c).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../harness/launch.js';

const BUILD_DIR = path.join(repoRoot, 'bench', 'build');

interface CProgram {
  readonly source: string;
  readonly binary: string;
  readonly flags: readonly string[];
  /** What the program is, for the reason string. */
  readonly what: string;
  /** Ends the reason string: what the caller loses without this program. */
  readonly consequence: string;
  /** null: not built yet in this process; otherwise the build's answer (undefined: it runs). */
  outcome: string | undefined | null;
}

export const REFERENCE_BINARY = path.join(BUILD_DIR, 'echo-epoll');
export const C_ECHO_CLIENT_BINARY = path.join(BUILD_DIR, 'c-echo-client');
/** The plain-Node reference server, compiled by the project's build like every other .ts file. */
export const PLAIN_NODE_SCRIPT = path.join(repoRoot, 'dist', 'bench', 'reference', 'plain-node.js');

const REFERENCE: CProgram = {
  source: path.join(repoRoot, 'bench', 'reference', 'echo-epoll.c'),
  binary: REFERENCE_BINARY,
  flags: ['-O2', '-Wall'],
  what: 'the C reference',
  consequence: 'so the C reference row is skipped',
  outcome: null,
};

export const THREADS_REFERENCE_BINARY = path.join(BUILD_DIR, 'echo-threads');

const THREADS_REFERENCE: CProgram = {
  source: path.join(repoRoot, 'bench', 'reference', 'echo-threads.c'),
  binary: THREADS_REFERENCE_BINARY,
  flags: ['-O2', '-Wall', '-pthread'],
  what: 'the C threads reference',
  consequence: 'so the C threads row is skipped',
  outcome: null,
};

const C_ECHO_CLIENT: CProgram = {
  source: path.join(repoRoot, 'bench', 'load', 'c-echo-client.c'),
  binary: C_ECHO_CLIENT_BINARY,
  // Every warning is an error: a load generator that miscounts is worse than none.
  flags: ['-O2', '-Wall', '-Wextra', '-Werror'],
  what: 'the C load generator',
  consequence: 'so the C load generator cannot run',
  outcome: null,
};

export const C_CHAT_CLIENT_BINARY = path.join(BUILD_DIR, 'c-chat-client');

const C_CHAT_CLIENT: CProgram = {
  source: path.join(repoRoot, 'bench', 'load', 'c-chat-client.c'),
  binary: C_CHAT_CLIENT_BINARY,
  flags: ['-O2', '-Wall', '-Wextra', '-Werror'],
  what: 'the C chat load generator',
  consequence: 'so make chat cannot run',
  outcome: null,
};

/** Compiles if needed; returns why the chat load generator cannot run, or undefined when it can. */
export function buildCChatClient(): string | undefined {
  return build(C_CHAT_CLIENT);
}

/** Compiles if needed; returns why the reference cannot run, or undefined when it can. */
export function buildReference(): string | undefined {
  return build(REFERENCE);
}

/** Compiles if needed; returns why the C threads reference cannot run, or undefined when it can. */
export function buildThreadsReference(): string | undefined {
  return build(THREADS_REFERENCE);
}

/** Compiles if needed; returns why the C load generator cannot run, or undefined when it can. */
export function buildCEchoClient(): string | undefined {
  return build(C_ECHO_CLIENT);
}

function build(program: CProgram): string | undefined {
  if (program.outcome !== null) return program.outcome;
  program.outcome = compile(program);
  return program.outcome;
}

function compile({ source, binary, flags, what, consequence }: CProgram): string | undefined {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return undefined;
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return `no C compiler (\`cc\`) on this machine, ${consequence}`;
  }
  mkdirSync(BUILD_DIR, { recursive: true });
  try {
    execFileSync('cc', [...flags, '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? String(error);
    return `${what} did not compile (${stderr}), ${consequence}`;
  }
}
