/**
 * `perf stat` per round trip: the kernel's counters for a lab's whole tree (every thread of every
 * process serving the load: perf attaches once each connection has been answered, so a forking
 * lab's children exist) over a fixed number of echo round trips, and nothing else. perf attaches to the running lab with its counters disabled
 * (`-D -1`), and this process enables them through perf's control FIFO just before the round
 * trips and disables them just after, waiting for perf's ack each time: start-up, warm-up and
 * shutdown are not counted.
 *
 * Software counters only (task-clock, context switches, CPU migrations, page faults) where the
 * machine exposes no hardware counters, as a VM without a virtual PMU does: `hardwareCounters()`
 * asks perf for cycles and says so in one line when they are not supported.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LabCase } from '../../test/helpers/labs.js';
import { processTree } from '../../harness/processes.js';
import { EchoLoop, until } from './pingpong.js';

export const PERF_EVENTS = ['task-clock', 'context-switches', 'cpu-migrations', 'page-faults'] as const;
export type PerfEvent = (typeof PERF_EVENTS)[number];

export interface PerfRow {
  readonly lab: string;
  readonly connections: number;
  readonly roundTrips: number;
  /** Each counter over all the round trips (task-clock in ms); null where perf did not count it. */
  readonly counts: Record<PerfEvent, number | null>;
}

/** Why perf stat cannot run here, as one line, or undefined. */
export function perfUnavailable(): string | undefined {
  try {
    execFileSync('perf', ['stat', '-x,', '-e', 'task-clock', '--', 'true'], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    const text = String((error as { stderr?: Buffer }).stderr ?? error);
    return /not found|ENOENT/.test(text) ? 'perf is not installed (apt-get install linux-perf)' : `perf stat cannot count here: ${text.trim().split('\n')[0]}`;
  }
}

/** One line when the cycle counter is not supported (software counters only), or undefined. */
export function hardwareCounters(): string | undefined {
  // perf stat writes its counts on stderr.
  const out = spawnSync('perf', ['stat', '-x,', '-e', 'cycles,instructions', '--', 'true'], { encoding: 'utf8' }).stderr;
  return /<not supported>/.test(out) ? "this machine's perf has no hardware counters (cycles and instructions <not supported>: no PMU exposed, as in most VMs), so software counters only" : undefined;
}

/** perf stat's CSV (-x,): value, unit, event, ...; "<not counted>" and "<not supported>" are null. */
export function parsePerfCsv(text: string): Record<string, number | null> {
  const counts: Record<string, number | null> = {};
  for (const line of text.split('\n')) {
    const [value, , event] = line.split(',');
    if (!event || line.startsWith('#')) continue;
    const number = Number(value);
    counts[event.replace(/:u$/, '')] = Number.isFinite(number) ? number : null;
  }
  return counts;
}

/** Counts `roundTrips` echo round trips on `connections` connections against a fresh start of `labCase`. */
export async function perfLab(labCase: Pick<LabCase, 'start' | 'title'>, connections: number, roundTrips: number): Promise<PerfRow> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-perf-'));
  const lab = await labCase.start(['--quiet']);
  try {
    const warm = await EchoLoop.start(lab.port, connections);
    await warm.until(connections * 10, 60_000);
    await warm.stop();
    // A forking lab's warm-up children must be gone before perf takes the list of pids: one that
    // ends between the list and the attach makes perf refuse the whole list.
    await until(() => processTree(lab.pid).length === 1, 30_000, 'the warm-up children to end');
    const load = await EchoLoop.start(lab.port, connections);
    // Every connection answered once: its child (a forking lab) exists, and is counted from here.
    await load.until(connections * 3, 60_000);
    const [control, ack, output] = ['control', 'ack', 'stat.csv'].map((f) => path.join(dir, f)) as [string, string, string];
    execFileSync('mkfifo', [control, ack]);
    const perf = spawn('perf', ['stat', '-x,', '-o', output, '-e', PERF_EVENTS.join(','), '--control', `fifo:${control},${ack}`, '-D', '-1', '-p', processTree(lab.pid).join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    perf.stderr.on('data', (d: Buffer) => (said += d.toString()));
    const exited = new Promise<void>((resolve) => perf.on('exit', () => resolve()));
    const gone = exited.then(() => {
      throw new Error(`perf stat ended before counting: ${said.trim() || 'no reason given'}`);
    });
    gone.catch(() => undefined);
    // Opened read-write, so neither open waits for perf's end (a FIFO opened one way blocks until the other side opens).
    let counted = 0;
    const ctl = await open(control, 'r+');
    const acks = await open(ack, 'r+');
    const command = async (word: string) => {
      await ctl.write(`${word}\n`);
      const buffer = Buffer.alloc(16);
      // perf answers "ack"; if it ended instead, nothing ever will.
      await Promise.race([acks.read(buffer, 0, buffer.length), gone]);
    };
    try {
      await command('enable');
      const from = load.roundTrips;
      await load.until(from + roundTrips, 300_000);
      await command('disable');
      counted = load.roundTrips - from;
      await load.stop();
    } finally {
      perf.kill('SIGINT');
      await exited;
      await ctl.close();
      await acks.close();
    }
    const parsed = parsePerfCsv(readFileSync(output, 'utf8'));
    const counts = Object.fromEntries(PERF_EVENTS.map((event) => [event, parsed[event] ?? null])) as Record<PerfEvent, number | null>;
    return { lab: labCase.title, connections, roundTrips: counted, counts };
  } finally {
    await lab.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}
