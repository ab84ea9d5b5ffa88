/**
 * `make soak`: sustained load against every lab, to see memory and descriptors over time.
 *
 * Each lab in turn: autocannon plus connection churn for a set time (default 60 s each), sampled
 * once a second, then a check that the server lets go of everything once the load stops. Writes
 * the raw samples to results/soak.json and renders results/soak.md from them alone. Not part of
 * `make test`.
 *
 *   make soak                      every lab, 60 s each (about 5 minutes)
 *   make soak QUICK=1              every lab, 5 s each, into results/quick/
 *   make soak SOAK_SECONDS=10      ten seconds per lab
 */

import { LABS } from '../../labs/index.js';
import { defineExperiment, runMain } from '../kit/experiment.js';
import { describeLabs } from '../kit/labs.js';
import { soakLab, type LabSoak } from './measure.js';
import { renderSoak, SOAK_SCHEMA } from './render.js';

const LAB_IDS = LABS.map((lab) => lab.id);

export const soak = defineExperiment({
  name: 'soak',
  title: 'Soak: memory and descriptors under sustained load',
  about: 'Soaks every lab (or --labs) under autocannon plus connection churn; writes results/soak.{json,md}.',
  schema: SOAK_SCHEMA,
  options: {
    seconds: { type: 'number', default: 60, quick: 5, min: 0, above: true, describe: 'load time per lab: long enough for a slow leak to show' },
    labs: { type: 'list', default: LAB_IDS, choices: LAB_IDS, describe: 'labs to soak' },
    connections: { type: 'number', default: 8, min: 0, above: true, integer: true, describe: 'autocannon keep-alive connections' },
    churners: { type: 'number', default: 4, min: 0, above: true, integer: true, describe: 'clients cycling connect, one request, close' },
    'sample-every': { type: 'number', default: 1, min: 0, above: true, describe: 'seconds between samples' },
  },
  render: renderSoak,
  async measure(settings, run) {
    const config = { seconds: settings.seconds, connections: settings.connections, churners: settings.churners, sampleMs: settings['sample-every'] * 1000 };
    // Each lab: its load time, plus a few seconds to start, warm up, settle and stop.
    const progress = run.progress(settings.labs.length * (config.seconds + 3));
    const runs: LabSoak[] = [];
    for (const id of settings.labs) {
      progress.step(`${id} for ${config.seconds} s`, config.seconds + 3);
      const soaked = await soakLab(id, config, (line) => progress.note(line));
      if (!soaked.settled.atBaseline) progress.note(`${id} did not return to its baseline after the load`);
      runs.push(soaked);
    }
    progress.done();
    return { labs: describeLabs(settings.labs), config, runs };
  },
});

runMain(soak, import.meta.url);
