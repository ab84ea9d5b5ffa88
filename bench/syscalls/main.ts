/**
 * `make syscalls`: the system calls and context switches each model makes per round trip and per
 * connection, for every lab (in every variant), plain Node and the C reference, under one fixed
 * workload. Writes results/syscalls.json and renders results/syscalls.md from it alone.
 *
 *   make syscalls                 10 connections × 2,000 round trips, then 50 connections (about a minute)
 *   make syscalls QUICK=1         a short check, into results/quick/
 *   node --import tsx bench/syscalls/main.ts --help
 */

import os from 'node:os';
import { UserError } from '../../shared/errors.js';
import { labVariants } from '../../labs/index.js';
import { startLab } from '../../harness/launch.js';
import { defineExperiment, runMain } from '../kit/experiment.js';
import { describeLabs } from '../kit/labs.js';
import { PLAIN_NODE, REFERENCE, THREADS_REFERENCE } from '../servers/targets.js';
import { measureServer, type StartServer } from './measure.js';
import { renderSyscalls, SYSCALLS_SCHEMA, type SyscallServer } from './render.js';
import { straceUnavailable } from './trace.js';

const LAB_ARGS = ['--quiet', '--idle-timeout', '600', '--shutdown-timeout', '2'];

interface Target {
  readonly id: string;
  readonly label: string;
  readonly model: string;
  /** One client at a time: the round-trip phase runs one connection. */
  readonly serial: boolean;
  readonly start: StartServer;
  readonly unavailable?: () => string | undefined;
}

function targets(): Target[] {
  const labs: Target[] = labVariants().map(({ lab, variant }) => ({
    id: variant.name ? `${lab.id} (${variant.name})` : lab.id,
    label: variant.name ? `${lab.label} (${variant.name})` : lab.label,
    model: lab.model,
    // A pool of threads (lab 08 prethreaded) would leave the connections beyond it in the accept queue: one connection, as for lab 01.
    serial: lab.traits.kernelQueueOnly || variant.servedAtOnce !== undefined,
    start: () => startLab(lab.id, [...variant.args, ...LAB_ARGS]),
  }));
  // The references as the benchmark starts them (bench/servers/targets.ts); they take no flags.
  const references = [PLAIN_NODE, REFERENCE, THREADS_REFERENCE].map((t) => ({
    id: t.id,
    label: t.label,
    model: t.model,
    serial: false,
    start: async () => {
      const server = await t.start({ protocol: 'echo', workUs: 0, maxConns: 1000, machineCores: os.availableParallelism() });
      return { ...server, pid: server.pid! };
    },
    unavailable: () => t.unavailable(),
  }));
  return [...labs, ...references];
}

export const syscalls = defineExperiment({
  name: 'syscalls',
  title: 'System calls and context switches per round trip',
  about: 'Counts system calls (strace -f -c) and context switches (/proc) per round trip and per connection; writes results/syscalls.{json,md}.',
  schema: SYSCALLS_SCHEMA,
  options: {
    'round-trips': { type: 'number', default: 2000, quick: 200, min: 1, integer: true, describe: 'round trips per connection' },
    connections: { type: 'number', default: 10, quick: 4, min: 1, max: 500, integer: true, describe: 'connections in the round-trip phase' },
    churn: { type: 'number', default: 50, quick: 10, min: 1, max: 10_000, integer: true, describe: 'connections in the connection phase' },
  },
  render: renderSyscalls,
  async measure(settings, run) {
    const missing = straceUnavailable();
    if (missing) throw new UserError(`cannot count system calls: ${missing}`);
    const workload = { connections: settings.connections, roundTrips: settings['round-trips'], size: 64, churn: settings.churn };
    const all = targets();
    // Per server: four fresh starts (about a second each) and the phases, slower under strace.
    const perServer = 4 + (workload.connections * workload.roundTrips) / 10_000 + workload.churn / 20;
    const progress = run.progress(all.length * perServer);
    const servers: SyscallServer[] = [];
    for (const target of all) {
      const skipped = target.unavailable?.();
      if (skipped) {
        servers.push({ id: target.id, label: target.label, model: target.model, skipped });
        continue;
      }
      progress.step(target.label, perServer);
      const counts = await measureServer(target.start, target.serial ? { ...workload, connections: 1 } : workload, (what) => progress.note(`${target.label}: ${what}`));
      servers.push({ id: target.id, label: target.label, model: target.model, counts });
    }
    progress.done();
    return { labs: describeLabs(), results: { workload, servers } };
  },
});

runMain(syscalls, import.meta.url);
