/**
 * The cgroups the limits experiment puts a lab in: found, made, limited, read and removed here
 * alone. Linux has two interfaces and a machine may have either (or both, "hybrid"):
 *   - cgroup v2 (one tree, /sys/fs/cgroup): cpu.max "QUOTA PERIOD", memory.max, memory.events
 *     (oom_kill), cpu.stat nr_periods / nr_throttled / throttled_usec;
 *   - cgroup v1 (one tree per controller, /sys/fs/cgroup/cpu and /sys/fs/cgroup/memory):
 *     cpu.cfs_quota_us / cpu.cfs_period_us, memory.limit_in_bytes, memory.oom_control (oom_kill),
 *     cpu.stat nr_periods / nr_throttled / throttled_time (ns).
 * v2 is used when its tree offers both the cpu and the memory controller; otherwise v1's.
 *
 * Where: a new group goes under the group this process is already in (the cgroup a container or a
 * `systemd-run --scope` gave it), so any limit above it still holds; if that is not writable,
 * under the tree's root. Each group is named io-lab-limits-PID-N, and every group made is removed
 * by `removeGroup` (its processes killed first: a group with a process in it cannot be removed),
 * which `removeAllGroups` calls for all of them on exit, on Ctrl-C and on failure. A group left by
 * a run that was SIGKILLed (no handler runs) is removed by the next run (`removeStaleGroups`).
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export type CgroupVersion = 'v1' | 'v2';

/** Where new groups go: one folder per controller (v2: the same folder twice). */
export interface CgroupSetup {
  readonly version: CgroupVersion;
  readonly cpuParent: string;
  readonly memoryParent: string;
  /** One line for the user and the report: what was found and where groups go. */
  readonly line: string;
}

/** Why no group can be made, as one line; `setup` is undefined then. */
export type CgroupProbe = { readonly setup: CgroupSetup; readonly problem?: undefined } | { readonly setup?: undefined; readonly problem: string };

export const GROUP_PREFIX = 'io-lab-limits-';

interface Mount {
  readonly dir: string;
  readonly type: 'cgroup' | 'cgroup2';
  readonly options: readonly string[];
}

function mounts(): Mount[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2')
    .map((f) => ({ dir: f[1]!, type: f[2] as Mount['type'], options: f[3]!.split(',') }));
}

/** This process's path in each hierarchy, from /proc/self/cgroup: "0" for v2, else the controller list. */
function ownPaths(): Map<string, string> {
  const paths = new Map<string, string>();
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
      const [, controllers, where] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
      if (where === undefined) continue;
      if (controllers === '') paths.set('0', where);
      for (const c of controllers!.split(',').filter(Boolean)) paths.set(c, where);
    }
  } catch {
    // no /proc/self/cgroup: no cgroups at all
  }
  return paths;
}

const read = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** Whether a group can be made in `dir`: make one and remove it again. */
function canMakeGroup(dir: string): string | undefined {
  const trial = path.join(dir, `${GROUP_PREFIX}probe-${process.pid}`);
  try {
    mkdirSync(trial);
    rmdirSync(trial);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** The first candidate folder a group can be made in (our own group, then the root), or why none. */
function writableParent(mountDir: string, own: string | undefined): { dir?: string; why: string } {
  const candidates = [...new Set([path.resolve(mountDir, `.${own ?? '/'}`), mountDir])];
  const whys: string[] = [];
  for (const dir of candidates) {
    const why = canMakeGroup(dir);
    if (why === undefined) return { dir, why: '' };
    whys.push(`${dir}: ${why}`);
  }
  return { why: whys.join(', ') };
}

/** Makes the v2 controllers available to children of `dir`; false when the kernel refuses. */
function delegateV2(dir: string): boolean {
  const enabled = (read(path.join(dir, 'cgroup.subtree_control')) ?? '').split(' ');
  const missing = ['cpu', 'memory'].filter((c) => !enabled.includes(c));
  if (missing.length === 0) return true;
  try {
    writeFileSync(path.join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
    return true;
  } catch {
    return false; // EBUSY: the group holds processes itself ("no internal processes" rule)
  }
}

/** Looks at this machine's cgroups and says what was found, or why no limited group can be made. */
export function probeCgroups(): CgroupProbe {
  const all = mounts();
  const own = ownPaths();
  const unified = all.find((m) => m.type === 'cgroup2');
  const v1 = (controller: string) => all.find((m) => m.type === 'cgroup' && m.options.includes(controller));
  const seen: string[] = [];

  if (unified) {
    const controllers = (read(path.join(unified.dir, 'cgroup.controllers')) ?? '').split(' ').filter(Boolean);
    seen.push(`cgroup v2 at ${unified.dir} with ${controllers.length ? controllers.join(' ') : 'no controllers'}`);
    if (controllers.includes('cpu') && controllers.includes('memory')) {
      for (const dir of [...new Set([path.join(unified.dir, own.get('0') ?? '/'), unified.dir])]) {
        if (!delegateV2(dir) || canMakeGroup(dir) !== undefined) continue;
        return { setup: { version: 'v2', cpuParent: dir, memoryParent: dir, line: `${seen[0]}: new groups go under ${dir}` } };
      }
      return { problem: `${seen[0]}, but no group with the cpu and memory controllers can be made there (run it as root, e.g. \`sudo make limits\`)` };
    }
  }
  const cpu = v1('cpu');
  const memory = v1('memory');
  if (!cpu || !memory) {
    const none = [!cpu && 'cpu', !memory && 'memory'].filter(Boolean).join(' and ');
    return { problem: `no cgroup ${none} controller on this machine (${seen.join('; ') || 'no cgroup file system mounted'})` };
  }
  const cpuParent = writableParent(cpu.dir, own.get('cpu'));
  const memoryParent = writableParent(memory.dir, own.get('memory'));
  if (!cpuParent.dir || !memoryParent.dir) {
    const why = [cpuParent.why, memoryParent.why].filter(Boolean).join(', ');
    return { problem: `cgroup v1 cpu and memory controllers found, but no group can be made (${why}): run as root, e.g. \`sudo make limits\`` };
  }
  const where = (dir: string, mount: string) => (dir === mount ? dir : `${dir} (this process's group)`);
  return {
    setup: {
      version: 'v1',
      cpuParent: cpuParent.dir,
      memoryParent: memoryParent.dir,
      line: `cgroup v1: cpu at ${where(cpuParent.dir, cpu.dir)}, memory at ${where(memoryParent.dir, memory.dir)}, both writable${seen.length ? ` (${seen.join('; ')}: not used)` : ''}`,
    },
  };
}

/** CPU throttling counters since the group was made. */
export interface CpuStat {
  /** Enforcement periods that had runnable tasks. */
  readonly periods: number;
  /** Periods in which the group used its quota up and was stopped until the next. */
  readonly throttled: number;
  readonly throttledMs: number;
}

export interface MemoryStat {
  readonly usageBytes: number;
  /** Highest usage since the group was made (v1 memory.max_usage_in_bytes, v2 memory.peak), when the kernel has it. */
  readonly peakBytes: number | undefined;
  /** Processes the kernel's OOM killer killed in the group. */
  readonly oomKills: number;
  /** Times an allocation hit the limit (v1 failcnt, v2 memory.events max). */
  readonly limitHits: number;
}

export interface Group {
  readonly name: string;
  readonly version: CgroupVersion;
  /** The group's folders: [cpu, memory] in v1, one in v2. */
  readonly dirs: readonly string[];
  /** The cgroup.procs files a process writes its pid to, to join the group. */
  readonly procsFiles: readonly string[];
  /** A CPU quota of `cores` per `periodUs`, or none. */
  setCpu(limit: { readonly cores: number; readonly periodUs: number } | undefined): void;
  setMemory(bytes: number | undefined): void;
  cpuStat(): CpuStat;
  memoryStat(): MemoryStat;
  /** Pids in the group now. */
  pids(): number[];
}

const made = new Set<Group>();
let counter = 0;

const numbers = (text: string | undefined): Map<string, number> =>
  new Map(
    (text ?? '')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((f) => f.length === 2)
      .map(([k, v]) => [k!, Number(v)]),
  );

export function makeGroup(setup: CgroupSetup): Group {
  const name = `${GROUP_PREFIX}${process.pid}-${counter++}`;
  const dirs = [...new Set([path.join(setup.cpuParent, name), path.join(setup.memoryParent, name)])];
  const cpuDir = dirs[0]!;
  const memoryDir = dirs.at(-1)!;
  const v2 = setup.version === 'v2';
  const write = (dir: string, file: string, value: string) => writeFileSync(path.join(dir, file), value);
  const group: Group = {
    name,
    version: setup.version,
    dirs,
    procsFiles: dirs.map((dir) => path.join(dir, 'cgroup.procs')),
    setCpu(limit) {
      const periodUs = limit?.periodUs ?? 100_000;
      const quotaUs = limit ? Math.round(limit.cores * periodUs) : undefined;
      if (v2) return write(cpuDir, 'cpu.max', `${quotaUs ?? 'max'} ${periodUs}`);
      // v1 checks the pair on each write: lift the quota, then set the period, then the quota.
      write(cpuDir, 'cpu.cfs_quota_us', '-1');
      write(cpuDir, 'cpu.cfs_period_us', String(periodUs));
      if (quotaUs !== undefined) write(cpuDir, 'cpu.cfs_quota_us', String(quotaUs));
    },
    setMemory(bytes) {
      if (v2) return write(memoryDir, 'memory.max', bytes === undefined ? 'max' : String(bytes));
      write(memoryDir, 'memory.limit_in_bytes', bytes === undefined ? '-1' : String(bytes));
    },
    cpuStat() {
      const stat = numbers(read(path.join(cpuDir, 'cpu.stat')));
      return {
        periods: stat.get('nr_periods') ?? 0,
        throttled: stat.get('nr_throttled') ?? 0,
        throttledMs: v2 ? (stat.get('throttled_usec') ?? 0) / 1000 : (stat.get('throttled_time') ?? 0) / 1e6,
      };
    },
    memoryStat() {
      const n = (file: string) => {
        const text = read(path.join(memoryDir, file));
        return text === undefined ? undefined : Number(text);
      };
      if (v2) {
        const events = numbers(read(path.join(memoryDir, 'memory.events')));
        return { usageBytes: n('memory.current') ?? 0, peakBytes: n('memory.peak'), oomKills: events.get('oom_kill') ?? 0, limitHits: events.get('max') ?? 0 };
      }
      const oom = numbers(read(path.join(memoryDir, 'memory.oom_control')));
      return { usageBytes: n('memory.usage_in_bytes') ?? 0, peakBytes: n('memory.max_usage_in_bytes'), oomKills: oom.get('oom_kill') ?? 0, limitHits: n('memory.failcnt') ?? 0 };
    },
    pids() {
      const pids = new Set<number>();
      for (const file of group.procsFiles) for (const line of (read(file) ?? '').split('\n')) if (line) pids.add(Number(line));
      return [...pids];
    },
  };
  mkdirSync(cpuDir);
  made.add(group);
  if (memoryDir !== cpuDir) mkdirSync(memoryDir);
  return group;
}

/** Sleeps without an event loop, for the exit path (process.on('exit') cannot wait otherwise). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** How long the processes of a group get to die after SIGKILL before its removal gives up. */
const REMOVE_TIMEOUT_MS = 5_000;

/**
 * Kills every process in the group and removes its folders. Synchronous, so it also runs in an
 * exit handler. Returns the folders it could not remove (empty when all went).
 */
export function removeGroup(group: Group): string[] {
  const deadline = performance.now() + REMOVE_TIMEOUT_MS;
  const left = new Set(group.dirs.filter((dir) => existsSync(dir)));
  while (left.size > 0) {
    for (const pid of group.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    for (const dir of [...left]) {
      try {
        rmdirSync(dir);
        left.delete(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') left.delete(dir);
      }
    }
    if (left.size === 0 || performance.now() > deadline) break;
    sleepSync(20);
  }
  if (left.size === 0) made.delete(group);
  return [...left];
}

/** Removes every group this process made; the folders that would not go. */
export function removeAllGroups(): string[] {
  return [...made].flatMap(removeGroup);
}

/** The groups this process has made and not yet removed. */
export function liveGroups(): readonly Group[] {
  return [...made];
}

/** Every io-lab-limits-* folder under the setup's parents (any run's). */
export function groupsOnDisk(setup: CgroupSetup): string[] {
  return [...new Set([setup.cpuParent, setup.memoryParent])].flatMap((parent) => {
    try {
      return readdirSync(parent)
        .filter((name) => name.startsWith(GROUP_PREFIX))
        .map((name) => path.join(parent, name));
    } catch {
      return [];
    }
  });
}

/** Removes groups left by earlier runs whose process is gone (a SIGKILLed run); the ones removed. */
export function removeStaleGroups(setup: CgroupSetup): string[] {
  const removed: string[] = [];
  for (const dir of groupsOnDisk(setup)) {
    const owner = Number(/^io-lab-limits-(\d+)-/.exec(path.basename(dir))?.[1]);
    if (!owner || existsSync(`/proc/${owner}`)) continue;
    if (removeGroup(makeStub(dir)).length === 0) removed.push(dir);
  }
  return removed;
}

/** A group of another run, known only by its folder: enough to empty and remove it. */
function makeStub(dir: string): Group {
  return {
    name: path.basename(dir),
    version: 'v1',
    dirs: [dir],
    procsFiles: [path.join(dir, 'cgroup.procs')],
    setCpu: () => {},
    setMemory: () => {},
    cpuStat: () => ({ periods: 0, throttled: 0, throttledMs: 0 }),
    memoryStat: () => ({ usageBytes: 0, peakBytes: undefined, oomKills: 0, limitHits: 0 }),
    pids: () => (read(path.join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number),
  };
}

/**
 * On exit, Ctrl-C (SIGINT), SIGTERM and SIGHUP: remove every group made. A signal then ends the
 * process with the shell's status for it (128 + signal number).
 */
export function removeGroupsOnExit(onSignal: (signal: NodeJS.Signals) => void = () => {}): void {
  process.on('exit', () => {
    const left = removeAllGroups();
    if (left.length) process.stderr.write(`could not remove ${left.join(', ')}\n`);
  });
  const codes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const signal of Object.keys(codes) as (keyof typeof codes)[]) {
    process.once(signal, () => {
      onSignal(signal);
      process.exit(codes[signal]);
    });
  }
}

/**
 * How to start a program inside `group`: a shell writes its own pid to each cgroup.procs file and
 * then execs the program (same pid), so the program's first instruction already runs under the
 * group's limits and every process or thread it starts is born inside. The load generator, this
 * process, stays outside.
 */
export function joinGroup(group: Group): { prefix: string[]; env: NodeJS.ProcessEnv } {
  return {
    prefix: ['/bin/sh', '-c', 'for f in $LIMITS_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"', 'join-cgroup'],
    env: { LIMITS_CGROUP_PROCS: group.procsFiles.join(' ') },
  };
}
