/**
 * The experiment kit: what every `make NAME` shares, so an experiment folder holds only what is
 * its own. An experiment declares
 *   - its options (kit/command-line.ts: typed, with quick-run defaults and ranges),
 *   - how it measures (`measure`: settings in, the results body out; the kit adds the stamp),
 *   - its results schema (`schema`, and `migrate` to lift an older file: committed reports are
 *     re-rendered from their JSON, never re-measured for a new renderer),
 *   - how it renders (`render`: a Page of typed parts, never Markdown for the whole report),
 * and the kit gives the command line, the stamp, progress, the quick/full output folders,
 * `--render-only`, the page layout every report shares (Summary table, chart, findings, the run,
 * then detail), the charts as SVG beside the report, and the README figures it publishes.
 *
 *   export const nagle = defineExperiment({ name: 'nagle', ..., measure, render });
 *   runMain(nagle, import.meta.url);
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hideBin } from '../../shared/yargs.js';
import { exitOnUserError } from '../../shared/errors.js';
import { stopAllLabs } from '../../harness/launch.js';
import { publishFigures, type Figures } from '../readme-figures.js';
import { chartImage, toSvg, type Chart } from './chart.js';
import { say, type Finding } from './findings.js';
import { parseSettings, relative, type OptionSpecs, type Settings } from './command-line.js';
import { Progress } from './progress.js';
import { readReportFile, reportPaths, writeReportFile, type ReportFile } from './report-file.js';
import { machineStamp, renderStamp, type Stamp } from './stamp.js';
import { renderColumnNotes, renderTable, type Table } from './table.js';

/** At most this many findings under a Summary: a learner reads them in a minute. */
export const MAX_FINDINGS = 5;

/** A rendered report, in parts; the kit lays them out the same way for every experiment. */
export interface Page {
  /** One or two sentences under the title: what was measured, against what. */
  readonly intro: string;
  /** One row per model (lab or variant), the few columns that carry the lesson. */
  readonly summary: Table;
  /** The headline figure as a picture. */
  readonly chart: Chart;
  /** At most MAX_FINDINGS, each one sentence. */
  readonly findings: readonly (Finding | undefined)[];
  /** Lines about how the run was made, under the stamp. */
  readonly method?: readonly string[];
  /** Everything else, in Markdown, for whoever wants the detail. */
  readonly detail: readonly string[];
  /** Further charts the detail links (`chartFile(NAME, chart)`). */
  readonly charts?: readonly Chart[];
}

/** The measured part of a results file: what `measure` returns, before the kit stamps it. */
export type Body<R> = Omit<R, 'experiment' | 'schema' | 'stamp'>;

/** The part of an experiment that reads and renders its results file (all a test needs). */
export interface Renderer<R extends ReportFile<string, number>> {
  readonly name: R['experiment'];
  /** The make target and its NAME_ARGS variable, when they differ from `name` (`make harden` writes hardening.md). */
  readonly target?: string;
  readonly title: string;
  readonly schema: R['schema'];
  readonly migrate?: (raw: Record<string, unknown>) => R | undefined;
  render(report: R): Page;
  /** Figures the READMEs quote from this report (bench/readme-figures.ts). */
  figures?(report: R): Figures;
}

export interface Experiment<O extends OptionSpecs, R extends ReportFile<string, number>> extends Renderer<R> {
  /** One line for --help. */
  readonly about: string;
  readonly options: O;
  /** Checks that can refuse before anything is measured (a tool missing): throw a UserError. */
  measure(settings: Settings<O>, run: Run): Promise<Body<R>>;
  /** Stops whatever measure started, on an error or a signal (every lab started is stopped anyway). */
  stop?(): Promise<void>;
}

/** What the kit hands `measure`. */
export interface Run {
  readonly stamp: Stamp;
  /** The progress line, with the run's planned seconds (0: no estimate). */
  progress(plannedSeconds: number): Progress;
}

export function defineExperiment<O extends OptionSpecs, R extends ReportFile<string, number>>(experiment: Experiment<O, R>): Experiment<O, R> {
  return experiment;
}

/** The make target that runs an experiment. */
const makeTarget = (experiment: Pick<Renderer<ReportFile<string, number>>, 'name' | 'target'>): string => experiment.target ?? experiment.name;

/** A chart's file beside the report: results/NAME-chart.svg. */
export const chartFile = (name: string, chart: Chart): string => `${name}-${chart.name}.svg`;

/** The report as Markdown, from the results file alone (pure: the same file, the same text). */
export function renderMarkdown<R extends ReportFile<string, number>>(experiment: Renderer<R>, report: R, jsonLink = `${experiment.name}.json`): string {
  const page = experiment.render(report);
  const findings = page.findings.filter((f): f is Finding => f !== undefined);
  if (findings.length > MAX_FINDINGS) throw new Error(`${experiment.name}: ${findings.length} findings, at most ${MAX_FINDINGS}`);
  const notes = renderColumnNotes(page.summary.columns);
  const parts = [
    `# ${experiment.title}`,
    '',
    page.intro,
    '',
    '## Summary',
    '',
    renderTable(page.summary),
    '',
    chartImage(page.chart, chartFile(experiment.name, page.chart)),
    '',
    ...findings.map((f) => `- ${say(f)}`),
    '',
    ...(notes ? ['<details><summary>What the columns mean</summary>', '', notes, '', '</details>', ''] : []),
    '## How this run was made',
    '',
    `Rendered from [\`${jsonLink.split('/').pop()}\`](${jsonLink}) alone; \`make ${makeTarget(experiment)} ${makeTarget(experiment).toUpperCase()}_ARGS=--render-only\` renders it again.`,
    '',
    renderStamp(report.stamp),
    ...(page.method ?? []).map((line) => `- ${line}`),
    '',
    ...page.detail,
  ];
  return `${parts.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

/** Writes the report and every chart beside it; returns the files written. */
export async function writeReport<R extends ReportFile<string, number>>(experiment: Renderer<R>, report: R, markdownFile: string, jsonFile: string): Promise<string[]> {
  const folder = path.dirname(markdownFile);
  mkdirSync(folder, { recursive: true });
  const page = experiment.render(report);
  const written = [markdownFile];
  for (const chart of [page.chart, ...(page.charts ?? [])]) {
    const file = path.join(folder, chartFile(experiment.name, chart));
    writeFileSync(file, await toSvg(chart.spec));
    written.push(file);
  }
  writeFileSync(markdownFile, renderMarkdown(experiment, report, path.relative(folder, jsonFile)));
  return written;
}

/** Reads a results file of this experiment, lifting an older schema. */
export function readReport<R extends ReportFile<string, number>>(experiment: Renderer<R>, file: string): R {
  return readReportFile<R>(file, { experiment: experiment.name as never, schema: experiment.schema as never, measure: `make ${makeTarget(experiment)}`, ...(experiment.migrate ? { migrate: experiment.migrate } : {}) });
}

/** The whole command: parse, measure (or read), write the JSON, render, publish README figures. */
export async function runExperiment<O extends OptionSpecs, R extends ReportFile<string, number>>(experiment: Experiment<O, R>, args: readonly string[]): Promise<void> {
  const settings = parseSettings(experiment.name, experiment.about, experiment.options, args);
  const stop = async () => {
    await experiment.stop?.();
    await stopAllLabs();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n[${experiment.name}] ${signal}: stopping every server started\n`);
      void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)); // 128 + the signal's number
    });
  }
  let report: R;
  if (settings.renderOnly) report = readReport(experiment, settings.output);
  else {
    // The stamp first: it counts the cores before a measurement pins this process to some.
    const stamp = machineStamp(settings.command);
    try {
      const body = await experiment.measure(settings, { stamp, progress: (planned) => new Progress(experiment.name, planned) });
      report = { ...body, experiment: experiment.name, schema: experiment.schema, stamp } as unknown as R;
    } finally {
      await stop();
    }
    writeReportFile(settings.output, report);
  }
  const written = await writeReport(experiment, report, settings.markdown, settings.output);
  process.stderr.write(`[${experiment.name}] wrote ${[...(settings.renderOnly ? [] : [settings.output]), ...written].map(relative).join(', ')}\n`);
  if (experiment.figures) publishFigures(experiment.name, settings, experiment.figures(report));
  // results/README.md's glance quotes every committed report's Summary: bring it up to date.
  if (!settings.quick && path.resolve(settings.output) === reportPaths(experiment.name, false).json) {
    const { publishGlance } = await import('../glance.js');
    process.stderr.write(`[${experiment.name}] results/README.md glance: ${(await publishGlance()) ? 'updated' : 'already current'}\n`);
  }
}

/** Runs the experiment when `moduleUrl` is the script node was started with (not when a test imports it). */
export function runMain<O extends OptionSpecs, R extends ReportFile<string, number>>(experiment: Experiment<O, R>, moduleUrl: string): void {
  if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl)) {
    runExperiment(experiment, hideBin(process.argv)).catch(exitOnUserError(experiment.name));
  }
}
