/**
 * The stamp on every report: which machine, kernel, Node, commit and command produced it, so a
 * reader can tell whether two reports are comparable and rerun the one in front of them.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineStamp {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly date: string;
  /** Commit hash, with "-dirty" when the tree had uncommitted changes. */
  readonly gitRevision: string;
  readonly command: string;
  readonly somaxconn: number | undefined;
}

export function machineStamp(command: string): MachineStamp {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    date: new Date().toISOString(),
    gitRevision: gitRevision(),
    command,
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
  };
}

function gitRevision(): string {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${hash}-dirty` : hash;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function readNumber(file: string): number | undefined {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** The header block every Markdown report starts with. */
export function renderStamp(stamp: MachineStamp): string {
  return [
    '| | |',
    '|---|---|',
    `| Machine | ${stamp.cpuModel}, ${stamp.cores} cores, ${stamp.memoryGiB} GiB |`,
    `| Kernel | ${stamp.kernel}${stamp.somaxconn === undefined ? '' : ` (net.core.somaxconn = ${stamp.somaxconn})`} |`,
    `| Node | ${stamp.node} |`,
    `| Date | ${stamp.date} |`,
    `| Git revision | \`${stamp.gitRevision}\` |`,
    `| Command | \`${stamp.command}\` |`,
    '',
  ].join('\n');
}
