/**
 * The stamp on every results file and report: which machine, kernel, Node, commit and command
 * produced it, and how busy the machine was as the run started, so a reader can tell whether two
 * reports are comparable and rerun the one in front of them.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Stamp {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly date: string;
  /** Commit hash, with "-dirty" when the tree had uncommitted changes (see `gitDirty`). */
  readonly gitRevision: string;
  readonly gitDirty?: boolean;
  readonly command: string;
  readonly somaxconn: number | undefined;
  /** The kernel's 1-minute load average as the run started, before it loaded anything. */
  readonly loadAverage1m?: number;
}

/**
 * From this 1-minute load average at start, the report warns: on a quiet machine it is near 0,
 * and 1 means a whole core was already busy with something else.
 */
export const BUSY_LOAD_AVERAGE = 1;

/** Take it before the harness pins itself to a core: it counts the cores this process may use. */
export function machineStamp(command: string): Stamp {
  const git = gitRevision();
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    date: new Date().toISOString(),
    gitRevision: git.revision,
    ...(git.dirty === undefined ? {} : { gitDirty: git.dirty }),
    command,
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
    loadAverage1m: os.loadavg()[0]!,
  };
}

function gitRevision(): { revision: string; dirty?: boolean } {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    // What experiments write themselves (reports, charts, the README figures they fill in) is
    // not a change to what was measured: one report run after another would otherwise be "dirty".
    const generated = [':(exclude)results', ':(exclude,glob)**/*.md'];
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ...generated], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { revision: dirty ? `${hash}-dirty` : hash, dirty };
  } catch {
    return { revision: 'unknown (not a git checkout)' };
  }
}

function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** The header block every Markdown report starts with, and a warning when the machine was busy. */
export function renderStamp(stamp: Stamp): string {
  const busy = stamp.loadAverage1m !== undefined && stamp.loadAverage1m >= BUSY_LOAD_AVERAGE;
  return [
    ...(busy
      ? [
          `> ⚠ The machine's 1-minute load average was ${stamp.loadAverage1m!.toFixed(1)} as this run started (${BUSY_LOAD_AVERAGE} or more: ` +
            'other programs kept at least a core busy), so the figures below are noisier than on a quiet machine.',
          '',
        ]
      : []),
    '| | |',
    '|---|---|',
    `| Machine | ${stamp.cpuModel}, ${stamp.cores} cores, ${stamp.memoryGiB} GiB |`,
    `| Kernel | ${stamp.kernel}${stamp.somaxconn === undefined ? '' : ` (net.core.somaxconn = ${stamp.somaxconn})`} |`,
    `| Node | ${stamp.node} |`,
    `| Date | ${stamp.date} |`,
    `| Git revision | \`${stamp.gitRevision}\` |`,
    `| Command | \`${stamp.command}\` |`,
    ...(stamp.loadAverage1m === undefined ? [] : [`| Load average at start | ${stamp.loadAverage1m.toFixed(2)} (1 minute) |`]),
    '',
  ].join('\n');
}
