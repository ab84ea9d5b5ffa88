/**
 * `make files`: static files over HTTP from every lab that serves them, sendfile(2) against
 * read/write: for files of 4 KiB, 1 MiB and 64 MiB, at 1 and 50 connections, requests/s, MB/s,
 * server CPU per MiB sent (and wrk's own), then the system calls per request under strace; then
 * the cold-cache scenario (cold.ts): small-file latency while a large file is downloaded from
 * the disk, against the same with it in the page cache, and the disk's own read rate.
 * Writes results/files.json and renders results/files.md from it alone.
 *
 *   make files              3 s runs after 1 s of warm-up (about 7 minutes)
 *   make files QUICK=1      2 s runs, no warm-up, into results/quick/ (about 3 minutes)
 *
 * Needs wrk (apt-get install wrk) and strace.
 */

import { UserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { defineExperiment, runMain } from '../kit/experiment.js';
import { describeLabs } from '../kit/labs.js';
import { straceUnavailable } from '../syscalls/trace.js';
import { type ColdPlan, type ColdTarget, coldSeconds, measureCold, readFromDisk } from './cold.js';
import { fileName, fileTargets, KiB, makeRoot, measureTarget, MiB, plannedSeconds, type TargetResult } from './measure.js';
import { FILES_SCHEMA, migrateFilesV1, renderFiles } from './render.js';
import path from 'node:path';
import { wrkUnavailable } from './wrk.js';

const SIZES = [4 * KiB, MiB, 64 * MiB];
const CONNECTIONS = [1, 50];
/**
 * The cold-cache scenario's large file: 256 MiB take about a second from this VM's disk (232 MB/s
 * measured once by hand), long enough for many small requests to meet it, and its small file.
 */
const COLD_LARGE = 256 * MiB;
const COLD_SMALL = 4 * KiB;
/** Small-file clients beside the download: a few, so that every lab serves them on one core. */
const COLD_CLIENTS = 4;
const FILE_LABS = LABS.filter((lab) => lab.protocols.includes('files')).map((lab) => lab.id);

export const files = defineExperiment({
  name: 'files',
  title: 'Static files: sendfile against read/write',
  about: 'Static files from every lab: sendfile against read/write, throughput, CPU per MiB and system calls per request; writes results/files.{json,md}.',
  schema: FILES_SCHEMA,
  migrate: migrateFilesV1,
  options: {
    seconds: { type: 'number', default: 3, quick: 2, min: 1, max: 600, integer: true, describe: 'seconds per measured run' },
    labs: { type: 'list', default: FILE_LABS, choices: FILE_LABS, describe: 'labs to measure (every lab that serves files)' },
  },
  render: renderFiles,
  async measure(settings, run) {
    const missing = wrkUnavailable() ?? straceUnavailable();
    if (missing) throw new UserError(`cannot run the files experiment: ${missing}`);
    const plan = { sizes: SIZES, connections: CONNECTIONS, seconds: settings.seconds, warmupSeconds: settings.quick ? 0 : 1, tracedSeconds: settings.quick ? 1 : 2 };
    const coldPlan: ColdPlan = { largeBytes: COLD_LARGE, smallBytes: COLD_SMALL, smallConnections: COLD_CLIENTS, seconds: settings.seconds };
    const targets = fileTargets((lab) => settings.labs.includes(lab.id));
    const progress = run.progress(targets.length * (plannedSeconds(plan) + coldSeconds(coldPlan)));
    progress.step(`writing ${SIZES.length + 1} files of random bytes`);
    const tree = makeRoot([...plan.sizes, COLD_LARGE]);
    const results: TargetResult[] = [];
    const cold: ColdTarget[] = [];
    const large = path.join(tree.root, fileName(COLD_LARGE));
    let disk;
    try {
      for (const target of targets) {
        progress.step(target.label, plannedSeconds(plan));
        results.push(await measureTarget(target, tree.root, plan, progress));
      }
      progress.step(`the disk's read rate: ${fileName(COLD_LARGE)} dropped from the page cache, then read`);
      const before = readFromDisk(large, COLD_LARGE);
      for (const target of targets) {
        progress.step(`${target.label}, cold cache`, coldSeconds(coldPlan));
        cold.push(await measureCold(target, tree.root, coldPlan, progress));
      }
      disk = { before, after: readFromDisk(large, COLD_LARGE) };
    } finally {
      tree.remove();
    }
    progress.done();
    return { labs: describeLabs([...new Set(targets.map((t) => t.labId))]), results: { plan, tool: 'wrk', targets: results, cold: { plan: coldPlan, disk, targets: cold } } };
  },
});

runMain(files, import.meta.url);
