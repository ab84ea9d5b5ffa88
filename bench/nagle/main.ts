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

import { hideBin } from 'yargs/helpers';
import { exitOnUserError, UserError } from '../../shared/errors.js';
import { LABS } from '../../labs/index.js';
import { startLab, stopAllLabs } from '../lib/launch.js';
import { describeLab, oneEventLoop } from '../pipeline/labs.js';
import { checkNumbers, commonSettings, experimentParser, parseStrictly, relative } from '../pipeline/options.js';
import { Progress } from '../pipeline/progress.js';
import { readReportFile, writeMarkdown, writeReportFile, type ReportFile } from '../pipeline/report-file.js';
import { machineStamp, renderStamp } from '../pipeline/stamp.js';
import { REQUEST_PATTERNS, smallWrites, splitWrites, type SmallWritesResult } from './measure.js';
import { renderNagle, type NagleResults, type SplitWritesServer } from './render.js';

export const NAGLE_SCHEMA = 1;
export interface NagleReport extends ReportFile<'nagle', typeof NAGLE_SCHEMA> {
  readonly results: NagleResults;
}

const WRITE_SIZES = [1, 16, 128, 1024] as const;

function parseArgs(args: readonly string[]) {
  const parser = experimentParser('nagle', "Nagle's algorithm and TCP_NODELAY: small writes and split writes against a lab; writes results/nagle.{json,md}.", args)
    .options({
      rounds: { type: 'number', describe: 'round trips per split-write row [default: 40; quick: 10]' },
      bytes: { type: 'number', describe: 'bytes per small-write row [default: 1048576; quick: 65536]' },
    })
    .check((a) => checkNumbers(a, { rounds: { min: 4, max: 1000, integer: true }, bytes: { min: 1024, max: 64 * 1024 * 1024, integer: true } }));
  const argv = parseStrictly(parser, args) as Record<string, unknown>;
  const common = commonSettings('nagle', argv, args);
  return {
    ...common,
    rounds: (argv.rounds as number | undefined) ?? (common.quick ? 10 : 40),
    bytes: (argv.bytes as number | undefined) ?? (common.quick ? 64 * 1024 : 1024 * 1024),
  };
}

/** Each server configuration of the split-write matrix, and the client rows run against it. */
const SERVER_CONFIGS = [
  // Every lab's default: TCP_NODELAY, one write per reply. Every request pattern, Nagle on and off at the client.
  { serverNoDelay: true, splitReplies: false, patterns: REQUEST_PATTERNS },
  // Nagle on at the server, which writes head and body apart: the stall in the other direction.
  { serverNoDelay: false, splitReplies: true, patterns: ['one write'] as const },
  // The same split reply with TCP_NODELAY: the option alone removes that stall.
  { serverNoDelay: true, splitReplies: true, patterns: ['one write'] as const },
];

async function measure(settings: ReturnType<typeof parseArgs>): Promise<NagleReport> {
  const lab = LABS.find((l) => oneEventLoop(l.traits));
  if (!lab) throw new UserError('no lab in labs/index.ts is a single event loop to measure against');
  const stamp = machineStamp(settings.command);
  const rows = SERVER_CONFIGS.reduce((n, c) => n + c.patterns.length * 2, 0);
  const progress = new Progress('nagle', WRITE_SIZES.length * 2 * 1.5 + rows * settings.rounds * 0.05);
  try {
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
      experiment: 'nagle',
      schema: NAGLE_SCHEMA,
      stamp,
      labs: [describeLab(lab)],
      results: { server: { id: lab.id, label: lab.label, model: lab.model }, smallWrites: small, splitWrites: split, rounds: settings.rounds },
    };
  } finally {
    await stopAllLabs();
  }
}

export function renderReport(report: NagleReport): string {
  return ['# Nagle, delayed ACKs and TCP_NODELAY', '', renderStamp(report.stamp), '', renderNagle(report.results), ''].join('\n');
}

async function main(): Promise<void> {
  const settings = parseArgs(hideBin(process.argv));
  const report = settings.renderOnly
    ? readReportFile<NagleReport>(settings.output, { experiment: 'nagle', schema: NAGLE_SCHEMA, measure: 'make nagle' })
    : await measure(settings);
  if (!settings.renderOnly) writeReportFile(settings.output, report);
  writeMarkdown(settings.markdown, renderReport(report));
  console.error(`[nagle] wrote ${settings.renderOnly ? '' : `${relative(settings.output)} and `}${relative(settings.markdown)}`);
}

main().catch(exitOnUserError('nagle'));
