/**
 * What a sandboxed process is refused: this script installs the sandbox with Node's own calls
 * only (shared/sandbox.ts NODE_RUNTIME, what every lab's list starts from), then tries what an
 * attacker who got code running in a lab would try first, and prints one JSON line of outcomes:
 *   exec:       start /bin/sh (execve);
 *   open:       read /etc/passwd, a file outside any root (openat);
 *   mkdirAsync: fs.mkdir, which runs on libuv's thread pool: refused only because TSYNC put the
 *               filter on that thread too (a filter on the main thread alone would let it through);
 *   mkdirSync:  the same call on the main thread.
 * With `--deny kill` the first refused call kills the process (SIGSYS) and nothing is printed.
 *
 * `--no-tsync` installs the same filter on the main thread alone, to show what TSYNC is for: the
 * pool's mkdir then succeeds. `--lab ID --protocol P` installs that lab's whole allow-list
 * (shared/sandbox.ts allowList) instead: what code running inside that lab could still do. A list
 * with openat (files) opens /etc/passwd: the filter sees call numbers, never paths. With `--child`,
 * the list a child of that lab narrows itself to (lab 02: no execve).
 *
 * `--no-exec` leaves the exec out: where a list lets fork through but not the wait that follows
 * it, libuv aborts the whole process inside the spawn (the caller then says so, and asks again).
 *
 * Usage: node dist/bench/harden/refusal.js [--deny kill] [--no-tsync] [--no-exec] [--lab ID --protocol P [--child]]
 * [--scratch DIR]; the last line printed is the scratch folder, for the caller to remove (the sandboxed process can no
 * longer): DIR, or one it made.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { labInfo } from '../../labs/index.js';
import type { ProtocolName } from '../../shared/protocol.js';
import { allowList, childAllowList, installSandbox, NODE_RUNTIME, type Deny } from '../../shared/sandbox.js';

/** One attempt's outcome: the error code Node gave ("EPERM"), or "done" when it was not refused. */
export type Outcome = string;

export interface Refusals {
  readonly exec: Outcome;
  readonly open: Outcome;
  readonly mkdirAsync: Outcome;
  readonly mkdirSync: Outcome;
}

const outcome = (error: unknown): Outcome => (error as NodeJS.ErrnoException).code ?? String(error);

async function main(): Promise<void> {
  const deny: Deny = process.argv.includes('kill') ? 'kill' : 'eperm';
  const flag = (name: string) => {
    const at = process.argv.indexOf(name);
    return at < 0 ? undefined : process.argv[at + 1];
  };
  // Made before the sandbox: afterwards there is no mkdtemp to make it with. A caller that gives
  // --scratch owns the folder, and removes it even when the exec takes this process down.
  const dir = flag('--scratch') ?? mkdtempSync(path.join(os.tmpdir(), 'iolab-refusal-'));
  // A thread-pool call first, so libuv's pool threads exist before the filter, as a lab's may.
  await mkdir(path.join(dir, 'before'));
  // Node opens its stdout stream on first use; opened under the filter (a socket from a parent's
  // execFile is set up with calls NODE_RUNTIME lacks) its writes would be lost without a word.
  void process.stdout;
  const lab = flag('--lab');
  const protocol = (flag('--protocol') ?? 'echo') as ProtocolName;
  const names = !lab ? NODE_RUNTIME : process.argv.includes('--child') ? childAllowList(labInfo(lab), { protocol }) : allowList(labInfo(lab), protocol);
  if (!names) throw new Error(`${lab} starts no child processes`);
  await installSandbox(names, deny, { tsync: !process.argv.includes('--no-tsync') });
  const attempt = async (run: () => unknown): Promise<Outcome> => {
    try {
      await run();
      return 'done';
    } catch (error) {
      return outcome(error);
    }
  };
  const refusals: Refusals = {
    exec: process.argv.includes('--no-exec') ? 'not tried' : await attempt(() => execFileSync('/bin/sh', ['-c', 'true'], { stdio: 'ignore' })),
    open: await attempt(() => readFileSync('/etc/passwd')),
    mkdirAsync: await attempt(() => mkdir(path.join(dir, 'async'))),
    mkdirSync: await attempt(() => mkdirSync(path.join(dir, 'sync'))),
  };
  process.stdout.write(`${JSON.stringify(refusals)}\n`);
  process.stdout.write(`${dir}\n`);
}

await main();
