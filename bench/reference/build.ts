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

/** The plain-Node reference server, compiled by the project's build like every other .ts file. */
export const PLAIN_NODE_SCRIPT = path.join(repoRoot, 'dist', 'bench', 'reference', 'plain-node.js');

/**
 * One C program: its binary, and `build()`, which compiles it when its source is newer (once per
 * process) and returns why it cannot run, or undefined when it can. `what` names it and
 * `consequence` ends that reason: what the caller loses without it.
 */
function cProgram(folder: string, name: string, flags: readonly string[], what: string, consequence: string) {
  const source = path.join(repoRoot, 'bench', folder, `${name}.c`);
  const binary = path.join(BUILD_DIR, name);
  let outcome: string | undefined | null = null; // null: not built yet in this process
  const build = (): string | undefined => (outcome === null ? (outcome = compile(source, binary, flags, what, consequence)) : outcome);
  return { binary, build };
}

/** Every warning is an error in the load generators: one that miscounts is worse than none. */
const STRICT = ['-O2', '-Wall', '-Wextra', '-Werror'];
const REFERENCE = cProgram('reference', 'echo-epoll', ['-O2', '-Wall'], 'the C reference', 'so the C reference row is skipped');
const THREADS_REFERENCE = cProgram('reference', 'echo-threads', ['-O2', '-Wall', '-pthread'], 'the C threads reference', 'so the C threads row is skipped');
const C_ECHO_CLIENT = cProgram('load', 'c-echo-client', STRICT, 'the C load generator', 'so the C load generator cannot run');
const C_CHAT_CLIENT = cProgram('load', 'c-chat-client', STRICT, 'the C chat load generator', 'so make chat cannot run');

export const { binary: REFERENCE_BINARY, build: buildReference } = REFERENCE;
export const { binary: THREADS_REFERENCE_BINARY, build: buildThreadsReference } = THREADS_REFERENCE;
export const { binary: C_ECHO_CLIENT_BINARY, build: buildCEchoClient } = C_ECHO_CLIENT;
export const { binary: C_CHAT_CLIENT_BINARY, build: buildCChatClient } = C_CHAT_CLIENT;

function compile(source: string, binary: string, flags: readonly string[], what: string, consequence: string): string | undefined {
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
