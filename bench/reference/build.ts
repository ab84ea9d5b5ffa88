/**
 * Builds the C reference server with the system's `cc` into bench/build/ (ignored by git), once
 * per harness run and only when the source is newer than the binary.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../lib/launch.js';

const SOURCE = path.join(repoRoot, 'bench', 'reference', 'echo-epoll.c');
export const REFERENCE_BINARY = path.join(repoRoot, 'bench', 'build', 'echo-epoll');

let outcome: string | undefined | null = null;

/** Compiles if needed; returns why the reference cannot run, or undefined when it can. */
export function buildReference(): string | undefined {
  if (outcome !== null) return outcome;
  outcome = compile();
  return outcome;
}

function compile(): string | undefined {
  if (existsSync(REFERENCE_BINARY) && statSync(REFERENCE_BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return undefined;
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'no C compiler (`cc`) on this machine, so the C reference row is skipped';
  }
  mkdirSync(path.dirname(REFERENCE_BINARY), { recursive: true });
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', REFERENCE_BINARY, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
    return undefined;
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] ?? String(error);
    return `the C reference did not compile (${stderr}), so its row is skipped`;
  }
}
