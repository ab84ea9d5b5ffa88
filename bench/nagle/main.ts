/**
 * `make nagle`: Nagle's algorithm and TCP_NODELAY, measured against the one-event-loop lab.
 * Small writes (1 MiB in writes of 1 to 1,024 bytes, with and without TCP_NODELAY) and split writes
 * (a request or a reply written in two parts, with Nagle on either side, and MSG_MORE / TCP_CORK as
 * the way to batch). Writes results/nagle.json and renders results/nagle.md from it alone.
 *
 *   make nagle               the full run (about half a minute)
 *   make nagle QUICK=1       a short check, into results/quick/
 *   node --import tsx bench/nagle/main.ts --help
 */

import { UserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { startLab } from '../../harness/launch.js';
import { defineExperiment, runMain, type Body } from '../kit/experiment.js';
import { describeLab, oneEventLoop } from '../kit/labs.js';
import { REQUEST_PATTERNS, smallWrites, splitWrites, type SmallWritesResult } from './measure.js';
import { NAGLE_SCHEMA, renderNagle, type NagleReport, type SplitWritesServer } from './render.js';

const WRITE_SIZES = [1, 16, 128, 1024] as const;

/** Each server configuration of the split-write matrix, and the client rows run against it. */
const SERVER_CONFIGS = [
  // Every lab's default: TCP_NODELAY, one write per reply. Every request pattern, Nagle on and off at the client.
  { serverNoDelay: true, splitReplies: false, patterns: REQUEST_PATTERNS },
  // Nagle on at the server, which writes head and body apart: the stall in the other direction.
  { serverNoDelay: false, splitReplies: true, patterns: ['one write'] as const },
  // The same split reply with TCP_NODELAY: the option alone removes that stall.
  { serverNoDelay: true, splitReplies: true, patterns: ['one write'] as const },
];

export const nagle = defineExperiment({
  name: 'nagle',
  title: 'Nagle, delayed ACKs and TCP_NODELAY',
  about: "Nagle's algorithm and TCP_NODELAY: small writes and split writes against a lab; writes results/nagle.{json,md}.",
  schema: NAGLE_SCHEMA,
  options: {
    rounds: { type: 'number', default: 40, quick: 10, min: 4, max: 1000, integer: true, describe: 'round trips per split-write row' },
    bytes: { type: 'number', default: 1024 * 1024, quick: 64 * 1024, min: 1024, max: 64 * 1024 * 1024, integer: true, describe: 'bytes per small-write row' },
  },
  render: renderNagle,
  async measure(settings, run): Promise<Body<NagleReport>> {
    const lab = LABS.find((l) => oneEventLoop(l.traits));
    if (!lab) throw new UserError('no lab in labs/index.ts is a single event loop to measure against');
    const rows = SERVER_CONFIGS.reduce((n, c) => n + c.patterns.length * 2, 0);
    const progress = run.progress(WRITE_SIZES.length * 2 * 1.5 + rows * settings.rounds * 0.05);
    const echo = await startLab(lab.id, ['--quiet']);
    const small: SmallWritesResult[] = [];
    for (const writeSize of WRITE_SIZES) {
      for (const noDelay of [false, true]) {
        progress.step(`small writes: ${writeSize} B, TCP_NODELAY ${noDelay ? 'on' : 'off'}`, 1.5);
        small.push(smallWrites(echo.host, echo.port, echo.pid, { bytes: settings.bytes, writeSize, noDelay }));
      }
    }
    await echo.stop('SIGTERM');

    const split: SplitWritesServer[] = [];
    for (const config of SERVER_CONFIGS) {
      const args = ['--quiet', '--protocol', 'http', ...(config.serverNoDelay ? [] : ['--no-nodelay']), ...(config.splitReplies ? ['--split-replies'] : [])];
      const server = await startLab(lab.id, args);
      const results = [];
      for (const pattern of config.patterns) {
        for (const clientNoDelay of [false, true]) {
          progress.step(`split writes: server ${args.slice(3).join(' ') || 'defaults'}, client ${pattern}, TCP_NODELAY ${clientNoDelay ? 'on' : 'off'}`, settings.rounds * 0.05);
          results.push(splitWrites(server.host, server.port, { pattern, clientNoDelay, rounds: settings.rounds }));
        }
      }
      await server.stop('SIGTERM');
      split.push({ serverNoDelay: config.serverNoDelay, splitReplies: config.splitReplies, results });
    }
    progress.done();
    return {
      labs: [describeLab(lab)],
      results: { server: { id: lab.id, label: lab.label, model: lab.model }, smallWrites: small, splitWrites: split, rounds: settings.rounds },
    };
  },
});

runMain(nagle, import.meta.url);
