/**
 * One run of the experiment: start a lab's real entry, watch its listening port from /proc while
 * the scripted arrival plays against it, stop it, and turn what was seen into a RunResult.
 * `defaultPlan`: every lab at its own backlog, then the serial lab at 1, 8, 128 (measure.ts plays it).
 */

import { execFile } from 'node:child_process';
import { DEFAULTS } from '../../shared/cli.js';
import { killTree, startLab, type LabProcess } from '../../harness/launch.js';
import { describeLabs, kernelQueueLab, type LabDescription } from '../kit/labs.js';
import { runArrival } from './arrival.js';
import { attributePorts, classify, toSamples } from './evidence.js';
import { startSampler, type RawSample, type Sampler } from './port-sampler.js';
import type { ClientTiming, KernelSettings, RunResult, Settings, SsSnapshot } from './results.js';

export interface RunPlan {
  readonly kind: 'model' | 'sweep';
  readonly lab: string;
  /** undefined: the lab's default backlog. */
  readonly backlog?: number;
}

export const SWEEP_BACKLOGS = [1, 8, 128] as const;

/**
 * Every lab at its own backlog, then the sweep: the lab whose only queue is the kernel's
 * (traits.kernelQueueOnly, from the registry) at each of SWEEP_BACKLOGS, since its accept queue is
 * the one that fills.
 */
export function defaultPlan(labs: readonly LabDescription[] = describeLabs()): RunPlan[] {
  const swept = kernelQueueLab(labs);
  return [
    ...labs.map((lab) => ({ kind: 'model' as const, lab: lab.id })),
    ...(swept ? SWEEP_BACKLOGS.map((backlog) => ({ kind: 'sweep' as const, lab: swept.id, backlog })) : []),
  ];
}

export interface RunOptions {
  readonly settings: Settings;
  readonly kernel: KernelSettings;
  /** Aborting destroys every client at once; the lab is stopped either way. */
  readonly signal?: AbortSignal;
  /** Take `ss` snapshots while client 1 holds (needs iproute2; off in tests). */
  readonly captureSs?: boolean;
  /** Called on every client event, for a progress line. */
  readonly onClient?: (client: number, event: string, atMs: number) => void;
}

/** How long before client 1 closes the `ss` snapshots are taken: late enough that all have arrived. */
const SS_LEAD_MS = 300;

export async function runScenario(plan: RunPlan, options: RunOptions): Promise<RunResult> {
  const { settings, kernel } = options;
  const signal = options.signal ?? new AbortController().signal;
  const backlogAsked = plan.backlog ?? DEFAULTS.backlog;
  const args = ['--quiet', ...(plan.backlog === undefined ? [] : ['--backlog', String(plan.backlog)])];
  let lab: LabProcess | undefined;
  let sampler: Sampler | undefined;
  let collected = false;
  let ssTimer: NodeJS.Timeout | undefined;
  const snapshots: Array<Promise<SsSnapshot | undefined>> = [];
  try {
    lab = await startLab(plan.lab, args);
    const listening = lab.output().stdout.split('\n').find((l) => l.includes('listening on')) ?? '';
    const model = /model: (.+); pid \d+\)/.exec(listening)?.[1] ?? plan.lab;
    const target = { host: lab.host, port: lab.port };

    const effective = await listenBacklog(lab.port);
    const clock = () => performance.timeOrigin + performance.now();
    const t0 = clock();
    const now = () => Math.round((clock() - t0) * 10) / 10;
    sampler = await startSampler({ port: lab.port, family: lab.host.includes(':') ? 'tcp6' : 'tcp', pid: lab.pid, intervalMs: settings.sampleMs, t0 });
    const timings = await runArrival(target, settings, now, signal, {
      onClient(client, event, atMs) {
        options.onClient?.(client, event, atMs);
        if (client === 1 && event === 'connected' && options.captureSs) {
          ssTimer = setTimeout(() => {
            snapshots.push(ss(['-ltn', `sport = :${lab!.port}`], now), ss(['-tn', 'state', 'syn-sent', `dport = :${lab!.port}`], now));
          }, Math.max(0, settings.holdMs - SS_LEAD_MS));
        }
      },
    });
    const end = now();
    const raw = await sampler.stop();
    collected = true;
    // The run's clock starts when client 1 starts connecting; the sampler started a little before.
    const zero = timings[0]?.startMs ?? 0;
    const shifted = shiftTimes(timings, raw, zero, settings.sampleMs);
    const { ports, strangers } = attributePorts(shifted.timings, shifted.raw);
    const samples = toSamples(shifted.raw, ports, settings.clients);
    const taken = (await Promise.all(snapshots)).filter((s): s is SsSnapshot => s !== undefined);
    return {
      kind: plan.kind,
      lab: plan.lab,
      model,
      args,
      backlogAsked,
      effectiveBacklog: effective ?? Math.min(backlogAsked, kernel.somaxconn ?? backlogAsked),
      effectiveBacklogSource: effective === undefined ? 'computed' : 'ss',
      durationMs: round(end - zero),
      clients: shifted.timings.map((t) => classify(t, samples, settings, kernel)),
      samples,
      strangerSockets: strangers,
      ss: taken.map((snapshot) => ({ ...snapshot, atMs: round(snapshot.atMs - zero) })),
    };
  } finally {
    clearTimeout(ssTimer);
    if (sampler && !collected) await sampler.terminate();
    if (lab) await stopLab(lab);
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** Moves time zero to `zero`, keeping one sample from before it as the baseline. */
function shiftTimes(timings: ClientTiming[], raw: RawSample[], zero: number, sampleMs: number) {
  const at = (ms: number | undefined) => (ms === undefined ? undefined : round(ms - zero));
  return {
    timings: timings.map((t) => ({
      ...t,
      startMs: round(t.startMs - zero),
      ...defined({ connectMs: at(t.connectMs), firstEchoMs: at(t.firstEchoMs), closeMs: at(t.closeMs), closedMs: at(t.closedMs) }),
    })),
    raw: raw.map((s) => ({ ...s, t: round(s.t - zero) })).filter((s) => s.t >= -sampleMs),
  };
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** SIGTERM and wait; whatever does not exit within a few seconds is killed, children included. */
async function stopLab(lab: LabProcess): Promise<void> {
  try {
    await lab.stop('SIGTERM', 5_000);
  } catch {
    killTree(lab.pid);
  }
}

/** The Send-Q of the LISTEN socket as `ss -ltn` prints it: the kernel's effective backlog. */
async function listenBacklog(port: number): Promise<number | undefined> {
  const snapshot = await ss(['-Hltn', `sport = :${port}`], () => 0);
  const sendQ = Number(snapshot?.output.trim().split(/\s+/)[2]);
  return Number.isInteger(sendQ) ? sendQ : undefined;
}

/** Runs `ss` with `args`; undefined when ss is missing or fails (the report then has no snapshot). */
function ss(args: string[], now: () => number): Promise<SsSnapshot | undefined> {
  const atMs = now();
  return new Promise((resolve) => {
    execFile('ss', args, { timeout: 2_000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      resolve({ command: `ss ${args.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`, output: stdout.trimEnd(), atMs });
    });
  });
}
