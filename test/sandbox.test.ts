/**
 * `--sandbox` (shared/sandbox.ts): the filter's bytes, what it refuses, and every lab in every
 * variant serving every protocol it serves under it, with every thread of every process filtered.
 *
 * The labs run with `--sandbox-deny kill`, stricter than the default EPERM: a call missing from a
 * lab's allow-list kills the lab here (a failed test, with the call in the kernel's audit log)
 * rather than failing quietly somewhere in Node. A run that passes under kill passes under EPERM.
 *
 * Every thread is checked, not only the main one: Node starts 7 to 11 threads before a lab
 * listens, and a filter without TSYNC would sit on the main thread alone. Lab 02's child is
 * checked with a client connected, while it exists.
 */

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { exercise, filesRoot } from '../bench/harden/workload.js';
import { repoRoot, stopAllLabs } from '../harness/launch.js';
import { processTree } from '../harness/processes.js';
import { buildFilter, NODE_RUNTIME, sandboxUnavailable } from '../shared/sandbox.js';
import { isSyscallName, syscallNumber } from '../shared/syscall-numbers.js';
import { LABS } from '../labs/index.js';
import { stopCleanly } from './helpers/exchange.js';
import { labCases, UNMET } from './helpers/labs.js';
import { closeAllClients, connect } from './helpers/tcp.js';
import { eventually } from './helpers/util.js';

const run = promisify(execFile);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'iolab-sandbox-test-'));
const root = filesRoot(scratch);

afterEach(async () => {
  closeAllClients();
  await stopAllLabs();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** "Seccomp: 2" (filter mode) or what the thread has instead, for every thread of every process in the tree. */
function seccompModes(pid: number): Record<string, string> {
  const modes: Record<string, string> = {};
  for (const process of processTree(pid)) {
    for (const thread of readdirSync(`/proc/${process}/task`)) {
      try {
        const status = readFileSync(`/proc/${process}/task/${thread}/status`, 'utf8');
        modes[`${process}/${thread} ${/^Name:\s*(.*)$/m.exec(status)?.[1]}`] = /^Seccomp:\s*(\d)/m.exec(status)?.[1] ?? '?';
      } catch {
        // a thread that ended between the listing and the read
      }
    }
  }
  return modes;
}

/** Runs one of make harden's scripts (dist/bench/harden/NAME.js): its JSON line, its scratch folder removed. */
async function script(name: string, args: string[]): Promise<Record<string, string>> {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'dist', 'bench', 'harden', `${name}.js`), ...args]);
  const [json, dir] = stdout.trim().split('\n');
  rmSync(dir!, { recursive: true, force: true });
  return JSON.parse(json!) as Record<string, string>;
}

describe('the filter', () => {
  it('checks the architecture, closes the x32 door, then allows each listed number and denies the rest', () => {
    const filter = new DataView(buildFilter([0, 1, 1], 'x64', 'eperm').buffer);
    const at = (i: number) => [filter.getUint16(i * 8, true), filter.getUint8(i * 8 + 2), filter.getUint8(i * 8 + 3), filter.getUint32(i * 8 + 4, true)];
    expect(filter.byteLength / 8).toBe(6 + 2 * 2 + 1); // duplicates once
    expect(at(0)).toEqual([0x20, 0, 0, 4]); // load seccomp_data.arch
    expect(at(1)).toEqual([0x15, 1, 0, 0xc000003e]); // AUDIT_ARCH_X86_64, else...
    expect(at(2)).toEqual([0x06, 0, 0, 0x80000000]); // ...kill the process
    expect(at(3)).toEqual([0x20, 0, 0, 0]); // load seccomp_data.nr
    expect(at(4)).toEqual([0x35, 0, 1, 0x40000000]); // an x32 number...
    expect(at(5)).toEqual([0x06, 0, 0, 0x00050001]); // ...is denied: EPERM
    expect(at(6)).toEqual([0x15, 0, 1, 0]);
    expect(at(7)).toEqual([0x06, 0, 0, 0x7fff0000]); // ALLOW
    expect(at(10)).toEqual([0x06, 0, 0, 0x00050001]); // anything else: EPERM
    const kill = new DataView(buildFilter([0], 'arm64', 'kill').buffer);
    expect(kill.byteLength / 8).toBe(4 + 2 + 1); // no x32 check on arm64
    expect(kill.getUint32(1 * 8 + 4, true)).toBe(0xc00000b7);
    expect(kill.getUint32(6 * 8 + 4, true)).toBe(0x80000000);
  });

  it('every name on every allow-list is a system call, and the numbers are the kernel\'s', () => {
    const names = [...NODE_RUNTIME, ...LABS.flatMap((lab) => [...lab.sandbox.calls, ...lab.sandbox.files])];
    expect(names.filter((name) => !isSyscallName(name))).toEqual([]);
    expect([syscallNumber('openat', 'x64'), syscallNumber('openat', 'arm64'), syscallNumber('poll', 'arm64')]).toEqual([257, 56, undefined]);
  });
});

// Generated only where the kernel has seccomp filters; one line says why otherwise.
const unavailable = sandboxUnavailable();
if (unavailable) console.log(`--sandbox not tested: ${unavailable}`);
describe.runIf(unavailable === undefined)('what a sandboxed process is refused', () => {
  const attempt = (args: string[]) => script('refusal', args);

  it('exec, an open outside any root and mkdir get EPERM, on the main thread and on the thread pool (TSYNC)', async () => {
    expect(await attempt([])).toEqual({ exec: 'EPERM', open: 'EPERM', mkdirAsync: 'EPERM', mkdirSync: 'EPERM' });
  });

  it('without TSYNC the thread pool is not filtered: fs.mkdir succeeds where mkdirSync is refused', async () => {
    expect(await attempt(['--no-tsync'])).toMatchObject({ mkdirAsync: 'done', mkdirSync: 'EPERM' });
  });

  it('--deny kill: the first refused call kills the process with SIGSYS', async () => {
    // Its scratch folder is made here: the killed process cannot say where its own was.
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'iolab-refusal-'));
    onTestFinished(() => rmSync(scratch, { recursive: true, force: true }));
    const error = await run(process.execPath, [path.join(repoRoot, 'dist', 'bench', 'harden', 'refusal.js'), '--deny', 'kill', '--scratch', scratch]).then(
      () => undefined,
      (e: { signal?: string }) => e,
    );
    expect(error?.signal).toBe('SIGSYS');
  });
});

// Where lab 07 runs at all (io_uring granted): io_uring operations are not system calls.
describe.runIf(unavailable === undefined && !UNMET.has('07-completion'))('io_uring under a filter that refuses mkdir', () => {
  const attempt = (args: string[]) => script('uring-bypass', args);

  it('an unrestricted ring makes the directory (IORING_OP_MKDIRAT) that the mkdir system call may not', async () => {
    expect(await attempt([])).toEqual({ ring: 'unrestricted', mkdirSyscall: 'EPERM', mkdiratOnRing: 'done' });
  });

  it("lab 07's restricted ring refuses the operation: EACCES", async () => {
    expect(await attempt(['--restricted'])).toEqual({ ring: 'restricted', mkdirSyscall: 'EPERM', mkdiratOnRing: 'EACCES' });
  });
});

describe.each(unavailable === undefined ? labCases() : [])('lab %s under --sandbox', (labCase) => {
  it.each(labCase.info.protocols.map((protocol) => [protocol]))('%s: every thread of every process is filtered, and every exchange is answered', async (protocol) => {
    const lab = await labCase.start(['--quiet', '--sandbox', '--sandbox-deny', 'kill', '--protocol', protocol, ...(protocol === 'files' ? ['--root', root] : [])]);
    expect(lab.output().stdout).toMatch(/sandbox: \d+ system calls allowed, others kill the process/);
    // A connected client, so that lab 02 has a child to check.
    const client = await connect(lab.port);
    if (labCase.traits.children) await eventually(() => (processTree(lab.pid).length > 1 ? true : undefined), 20_000, 'a child for the client');
    const modes = seccompModes(lab.pid);
    expect(Object.keys(modes).length).toBeGreaterThan(1);
    expect(Object.entries(modes).filter(([, mode]) => mode !== '2')).toEqual([]);
    // A child that narrows its inherited filter has one more stacked than its parent.
    if (labCase.info.sandbox.child) {
      const filters = (pid: number) => {
        try {
          return Number(/^Seccomp_filters:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
        } catch {
          return undefined; // a process that ended meanwhile
        }
      };
      const own = filters(lab.pid)!;
      await eventually(() => (processTree(lab.pid).slice(1).some((child) => filters(child) === own + 1) ? true : undefined), 20_000, "the client's child to add a filter of its own");
    }
    client.socket.destroy();
    const served = await exercise(protocol, { port: lab.port, rounds: 2, oneAtATime: labCase.traits.kernelQueueOnly });
    expect(served.problems).toEqual([]);
    expect(served.exchanges).toBeGreaterThan(0);
    await stopCleanly(lab);
  });
});
