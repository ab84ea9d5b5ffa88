/**
 * io_uring walks past seccomp: this script installs a filter that refuses mkdir (Node's own calls
 * and io_uring_enter only, as a sandboxed lab 07 has), then asks for the same directory twice:
 * with mkdirSync (a system call: EPERM), and as IORING_OP_MKDIRAT on a ring made before the filter
 * (an operation the kernel performs for the ring, which no filter sees). With `--restricted` the
 * ring is lab 07's restricted one (labs/07-completion/ring.ts): it accepts only the lab's five
 * operations, and MKDIRAT completes with -EACCES. Prints one JSON line: what each attempt got.
 *
 * Usage: node dist/bench/harden/uring-bypass.js [--restricted]; the last line is a scratch folder
 * for the caller to remove.
 */

import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ring } from '../../labs/07-completion/ring.js';
import * as libc from '../../shared/libc.js';
import { installSandbox, NODE_RUNTIME } from '../../shared/sandbox.js';

const IORING_OP_MKDIRAT = 37;
const AT_FDCWD = -100;

const restricted = process.argv.includes('--restricted');
const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-uring-bypass-'));
const ring = new Ring(libc, { entries: 4, cqEntries: 8, restricted });
// The path, NUL-terminated, in memory whose address we know (the SQE carries a pointer).
const target = Buffer.from(`${path.join(dir, 'made-through-the-ring')}\0`);
const memory = libc.mmap(null, 4096, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
new Uint8Array(libc.viewPointer(memory, 4096)).set(target);
void process.stdout;
await installSandbox([...NODE_RUNTIME, 'io_uring_enter'], 'eperm');

let syscall = 'done';
try {
  mkdirSync(path.join(dir, 'made-by-a-system-call'));
} catch (error) {
  syscall = (error as NodeJS.ErrnoException).code ?? String(error);
}
// sqe.addr: the path; sqe.len: the mode.
ring.queue({ op: IORING_OP_MKDIRAT, fd: AT_FDCWD, id: 1, address: libc.pointerAddress(memory), length: 0o755 });
ring.submitAndWait(5000);
let res: number | undefined;
while (res === undefined) {
  ring.reap((completion) => (res = completion.res));
  if (res === undefined) ring.submitAndWait(5000);
}
const ringOutcome = res >= 0 ? 'done' : libc.errnoName(-res);
process.stdout.write(`${JSON.stringify({ ring: restricted ? 'restricted' : 'unrestricted', mkdirSyscall: syscall, mkdiratOnRing: ringOutcome })}\n${dir}\n`);
