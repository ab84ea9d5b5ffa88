/**
 * `make soak`: sustained load against every lab, to see memory and descriptors over time.
 *
 * Each lab in turn: autocannon plus connection churn for a set time (default 60 s each), sampled
 * once a second, then a check that the server lets go of everything once the load stops. Writes
 * the raw samples to results/soak.json and renders results/soak.md from them (measure and render
 * are separate: `--render-only` re-renders from the JSON). Not part of `make test`.
 *
 *   make soak                      every lab, 60 s each (about 5 minutes)
 *   make soak SOAK_SECONDS=10      a short check
 *   node --import tsx bench/soak.ts --help
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { strictly } from '../../shared/cli.js';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { hideBin } from 'yargs/helpers';
import { LAB_IDS, repoRoot } from '../lib/launch.js';
import { machineStamp } from '../pipeline/stamp.js';
import { renderSoak, type SoakReport } from './render.js';
import { soakLab, type LabSoak } from './measure.js';

function parseArgs() {
  try {
    return strictly(
      yargs(hideBin(process.argv))
        .scriptName('node --import tsx bench/soak.ts')
        .usage('$0 [options]\n\nSoaks every lab (or --labs) under autocannon plus connection churn; writes results/soak.{json,md}.')
        .options({
          seconds: { type: 'number', default: 60, describe: 'load time per lab' },
          labs: { type: 'array', string: true, default: [...LAB_IDS], choices: LAB_IDS, describe: 'labs to soak' },
          connections: { type: 'number', default: 8, describe: 'autocannon keep-alive connections' },
          churners: { type: 'number', default: 4, describe: 'clients cycling connect, one request, close' },
          'sample-every': { type: 'number', default: 1, describe: 'seconds between samples' },
          out: { type: 'string', default: path.join(repoRoot, 'results', 'soak'), describe: 'report path without extension' },
          'render-only': { type: 'boolean', default: false, describe: 'only re-render <out>.md from <out>.json' },
        })
        .check((a) => {
          for (const name of ['seconds', 'connections', 'churners', 'sample-every'] as const) {
            if (!(typeof a[name] === 'number' && a[name] > 0)) throw new UserError(`--${name} must be a positive number, got ${String(a[name])}`);
          }
          return true;
        }),
    ).parseSync();
  } catch (error) {
    return exitOnUserError('soak')(error);
  }
}

const argv = parseArgs();

const jsonPath = `${argv.out}.json`;
const mdPath = `${argv.out}.md`;

async function measure(): Promise<SoakReport> {
  const config = { seconds: argv.seconds, connections: argv.connections, churners: argv.churners, sampleMs: argv['sample-every'] * 1000 };
  const command = process.env.SOAK_COMMAND ?? `node --import tsx bench/soak.ts ${hideBin(process.argv).join(' ')}`.trim();
  const stamp = machineStamp(command);
  const labs: LabSoak[] = [];
  for (const id of argv.labs) {
    console.log(`soak: ${id} for ${config.seconds} s`);
    labs.push(await soakLab(id, config, (line) => console.log(`soak: ${line}`)));
  }
  return { stamp, config, labs };
}

const report: SoakReport = argv['render-only'] ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as SoakReport) : await measure();
if (!argv['render-only']) {
  mkdirSync(path.dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
}
writeFileSync(mdPath, renderSoak(report));
console.log(`soak: wrote ${path.relative(process.cwd(), mdPath)}`);
for (const lab of report.labs) {
  if (!lab.settled.atBaseline) console.log(`soak: ${lab.lab} did not return to its baseline after the load`);
}
