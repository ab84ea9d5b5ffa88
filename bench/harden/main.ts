/**
 * `make harden`: hardening, measured per I/O model. For every lab: the system calls it makes in
 * steady state under load (strace, under its own --sandbox, every protocol it serves), beside its
 * allow-list; that it served everything with nothing lost; what code inside its sandbox is refused
 * (exec a shell, open a file outside any root); the health probes (TCP connect against echo) idle,
 * busy, blocked by --work-us and draining; and perf stat's counters per round trip. Then once:
 * TSYNC, io_uring past seccomp with and without a restricted ring, port 80 without root
 * (CAP_NET_BIND_SERVICE only), a lab in its own network namespace through a veth pair, and the
 * systemd unit's score. Every part the machine does not allow is skipped with one line saying why.
 *
 *   make harden              the full run (about 10 minutes; quick about 4)
 *   make harden QUICK=1      a short check, into results/quick/
 *   node --import tsx bench/harden/main.ts --help
 */

import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LABS, labVariants, type LabInfo } from '../../labs/index.js';
import { unmetNeed } from '../../shared/needs.js';
import { allowList, sandboxUnavailable } from '../../shared/sandbox.js';
import { repoRoot, startLab } from '../../harness/launch.js';
import { defineExperiment, runMain, type Body } from '../kit/experiment.js';
import { describeLabs, oneEventLoop } from '../kit/labs.js';
import { straceUnavailable } from '../syscalls/trace.js';
import { traceLab } from './calls.js';
import { acrossVeth, namespacesUnavailable, portBelow1024 } from './namespaces.js';
import { hardwareCounters, perfLab, perfUnavailable, type PerfRow } from './perf.js';
import { probeLab, type ProbeRow } from './probes.js';
import type { Refusals } from './refusal.js';
import { renderHardening } from './render.js';
import { HARDEN_SCHEMA, type HardenReport, type HardenResults, type LabRefusals, type TracedProtocol } from './results.js';

const run = promisify(execFile);

/** A lab in one variant, started as the tests start it. */
interface Target {
  readonly lab: LabInfo;
  readonly variant: string;
  readonly title: string;
  start(args?: string[]): ReturnType<typeof startLab>;
}

const targets = (labs: readonly LabInfo[], everyVariant: boolean): Target[] =>
  labVariants((lab) => labs.includes(lab))
    .filter(({ lab, variant }) => everyVariant || variant === lab.variants[0])
    .map(({ lab, variant, title }) => ({ lab, variant: variant.name, title, start: (args = []) => startLab(lab.id, [...variant.args, ...args]) }));

/** One of make harden's scripts (dist/bench/harden/NAME.js): its JSON line; its scratch folder removed. */
async function script<T>(name: string, args: string[]): Promise<T> {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'dist', 'bench', 'harden', `${name}.js`), ...args]);
  const [json, dir] = stdout.trim().split('\n');
  if (dir) rmSync(dir, { recursive: true, force: true });
  return JSON.parse(json!) as T;
}

/**
 * What a process under a lab's list is refused (refusal.ts). An exec can take the whole process
 * down: where the list lets fork through but not the wait after it, libuv aborts inside the spawn
 * (SIGABRT). That is the exec's outcome; the other attempts are asked again without it.
 */
async function refusal(args: string[]): Promise<Refusals> {
  // Each attempt's scratch folder is made here, so that it is removed even when the exec kills
  // the process that would print it.
  const attempt = async (extra: string[]) => {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'iolab-refusal-'));
    try {
      return await script<Refusals>('refusal', [...args, ...extra, '--scratch', scratch]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  };
  try {
    return await attempt([]);
  } catch (error) {
    const { signal } = error as { signal?: string | null };
    if (!signal) throw error;
    return { ...(await attempt(['--no-exec'])), exec: `killed by ${signal}` };
  }
}

async function scoreUnit(): Promise<HardenResults['unit'] | string> {
  try {
    await run('systemd-analyze', ['--version']);
  } catch {
    return 'systemd-analyze is not installed (apt-get install systemd; it scores a unit offline without systemd running)';
  }
  const unit = path.join(repoRoot, 'deploy', 'iolab@.service');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-unit-'));
  try {
    const verified = await run('systemd-analyze', ['verify', unit]);
    const instance = path.join(dir, 'iolab@04-evented.service');
    copyFileSync(unit, instance);
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', instance]);
    const [, score, verdict] = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(stdout) ?? [];
    return { verify: `${verified.stdout}${verified.stderr}`.trim(), score: Number(score), verdict: verdict ?? '?' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const hardening = defineExperiment({
  name: 'hardening',
  target: 'harden',
  title: 'Hardening: a sandbox per model, capabilities, namespaces, health checks',
  about: 'Per lab: system calls under load against its seccomp allow-list, what its sandbox refuses, health probes and perf stat; then io_uring, port 80, a veth pair and the systemd unit; writes results/hardening.{json,md}.',
  schema: HARDEN_SCHEMA,
  options: {
    labs: { type: 'list', choices: LABS.map((l) => l.id), describe: 'labs to measure [default: every lab]' },
    rounds: { type: 'number', default: 20, quick: 3, min: 1, max: 1000, integer: true, describe: "rounds of each protocol's workload under strace" },
    'round-trips': { type: 'number', default: 20_000, quick: 2_000, min: 100, max: 10_000_000, integer: true, describe: 'echo round trips perf stat counts per lab' },
    'deadline-ms': { type: 'number', default: 500, min: 10, max: 60_000, integer: true, describe: "the health probes' deadline" },
    'work-us': { type: 'number', default: 2_000_000, quick: 1_500_000, min: 1000, max: 10_000_000, integer: true, describe: 'the blocked state: --work-us of the chunk that blocks the lab (longer than the deadline)' },
  },
  render: renderHardening,
  async measure(settings, runner): Promise<Body<HardenReport>> {
    const skipped: { part: string; reason: string }[] = [];
    const skip = (part: string, reason: string) => {
      skipped.push({ part, reason });
      process.stderr.write(`[hardening] skipped ${part}: ${reason}\n`);
    };
    const chosen = LABS.filter((lab) => !settings.labs || settings.labs.includes(lab.id));
    const runnable: LabInfo[] = [];
    for (const lab of chosen) {
      const unmet = await unmetNeed(lab);
      if (unmet) skip(lab.id, unmet);
      else runnable.push(lab);
    }
    const sandboxMissing = sandboxUnavailable();
    const straceMissing = straceUnavailable();
    const perfMissing = perfUnavailable();
    const traced = targets(runnable, !settings.quick);
    const firsts = targets(runnable, false);
    const protocols = traced.reduce((n, t) => n + t.lab.protocols.length, 0);
    const progress = runner.progress(protocols * (4 + settings.rounds) + firsts.length * (12 + settings['work-us'] / 1e6 + settings['round-trips'] / 2000) + 20);

    const tracedRuns: TracedProtocol[] = [];
    const refusals: LabRefusals[] = [];
    if (sandboxMissing) skip('the sandbox (system calls, refusals, TSYNC, io_uring)', sandboxMissing);
    else {
      if (straceMissing) skip('system calls under load', straceMissing);
      else {
        for (const target of traced) {
          for (const protocol of target.lab.protocols) {
            progress.step(`${target.title}: ${protocol} under --sandbox and strace`, 4 + settings.rounds);
            const traceRun = await traceLab({ start: (args) => target.start(args), traits: target.lab.traits }, protocol, settings.rounds, ['--sandbox']);
            const calls = Object.fromEntries(Object.entries(traceRun.calls).filter(([name]) => name !== 'seccomp' || traceRun.calls[name]!.calls > 0));
            tracedRuns.push({
              lab: target.lab.id,
              variant: target.variant,
              protocol,
              allowed: allowList(target.lab, protocol).sort(),
              calls,
              exchanges: traceRun.served.exchanges,
              problems: traceRun.served.problems,
              exitCode: traceRun.exitCode,
            });
          }
        }
      }
      for (const lab of runnable) {
        for (const protocol of lab.protocols.filter((p) => p === 'echo' || p === 'files')) {
          progress.step(`${lab.id}: what its ${protocol} sandbox refuses`, 1);
          refusals.push({ lab: lab.id, protocol, ...(await refusal(['--lab', lab.id, '--protocol', protocol])) });
        }
        if (lab.sandbox.child) {
          progress.step(`${lab.id}: what a child's narrower sandbox refuses`, 1);
          refusals.push({ lab: lab.id, protocol: 'echo', child: true, ...(await refusal(['--lab', lab.id, '--protocol', 'echo', '--child'])) });
        }
      }
    }
    let tsync: HardenResults['tsync'];
    let uring: HardenResults['uring'];
    if (!sandboxMissing) {
      progress.step('TSYNC: the thread pool with and without it', 2);
      tsync = { with: await refusal([]), without: await refusal(['--no-tsync']) };
      const ringLab = LABS.find((lab) => lab.needs === 'io_uring');
      const unmet = ringLab && (await unmetNeed(ringLab));
      if (!ringLab) skip('io_uring past seccomp', 'no lab in labs/index.ts uses io_uring');
      else if (unmet) skip('io_uring past seccomp', unmet);
      else {
        progress.step('io_uring: MKDIRAT under a mkdir-refusing filter', 2);
        uring = [await script('uring-bypass', []), await script('uring-bypass', ['--restricted'])];
      }
    }

    const probeSettings = { deadlineMs: settings['deadline-ms'], workUs: settings['work-us'] };
    const probes: ProbeRow[] = [];
    for (const target of firsts) {
      progress.step(`${target.title}: health probes idle, busy, draining, blocked`, 8 + settings['work-us'] / 1e6);
      probes.push(await probeLab(target, probeSettings));
    }

    const perf: PerfRow[] = [];
    let perfNote: string | undefined;
    if (perfMissing) skip('perf stat', perfMissing);
    else {
      perfNote = hardwareCounters();
      if (perfNote) skip('perf stat hardware counters', perfNote);
      for (const target of firsts) {
        progress.step(`${target.title}: perf stat over ${settings['round-trips']} round trips`, 4 + settings['round-trips'] / 2000);
        perf.push(await perfLab(target, target.lab.traits.kernelQueueOnly ? 1 : 4, settings['round-trips']));
      }
    }

    let capabilities: HardenResults['capabilities'];
    let veth: HardenResults['veth'];
    const nsMissing = namespacesUnavailable();
    const nsLab = runnable.find((lab) => oneEventLoop(lab.traits)) ?? runnable[0];
    if (nsMissing) skip('port 80 and network namespaces', nsMissing);
    else if (nsLab) {
      progress.step(`${nsLab.id}: port 80 as nobody, with and without CAP_NET_BIND_SERVICE`, 4);
      capabilities = { lab: nsLab.id, ...(await portBelow1024(nsLab.id)) };
      progress.step(`${nsLab.id}: in its own network namespace, through a veth pair`, 4);
      veth = { lab: nsLab.id, ...(await acrossVeth(nsLab.id, settings['round-trips'] / 10)) };
      if ('skipped' in veth.netem) skip('tc netem', veth.netem.skipped);
    }

    progress.step('deploy/iolab@.service: systemd-analyze', 2);
    const scored = await scoreUnit();
    if (typeof scored === 'string') skip('the systemd unit', scored);
    progress.done();
    return {
      labs: describeLabs(runnable.map((lab) => lab.id)),
      results: {
        arch: process.arch,
        traced: tracedRuns,
        refusals,
        ...(tsync ? { tsync } : {}),
        ...(uring ? { uring } : {}),
        ...(capabilities ? { capabilities } : {}),
        ...(veth ? { veth } : {}),
        probes,
        probeSettings,
        perf,
        ...(perfNote ? { perfNote } : {}),
        ...(typeof scored === 'object' && scored ? { unit: scored } : {}),
        skipped,
      },
    };
  },
});

runMain(hardening, import.meta.url);
