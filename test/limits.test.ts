/**
 * The limits experiment (bench/limits/): its report and pictures rendered from a results file
 * (test/fixtures/limits-results.json, from a short real run), the one line and exit status 2
 * where no cgroup can be made, and, where one can (CI runs as root), short real runs: a CPU
 * quota that throttles and no limit that does not, lab 02's failure under a memory cap beside
 * lab 04 holding its clients, and no cgroup left behind, also after a failure and after Ctrl-C.
 */

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { groupsOnDisk, liveGroups, probeCgroups, removeAllGroups } from '../bench/limits/cgroup.js';
import { measureCpuLab } from '../bench/limits/cpu.js';
import { measureMemoryLab } from '../bench/limits/memory.js';
import { LIMITS_SCHEMA, type LimitsReport } from '../bench/limits/render.js';
import { limits } from '../bench/limits/main.js';
import { toSvg } from '../bench/kit/chart.js';
import { chartFile, renderMarkdown, writeReport } from '../bench/kit/experiment.js';
import { repoRoot, stopAllLabs } from '../harness/launch.js';
import { poissonSchedule } from '../bench/load/paced.js';
import { readReportFile } from '../bench/kit/report-file.js';
import { eventually } from './helpers/util.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'limits-results.json');
const MAIN = path.join(repoRoot, 'dist', 'bench', 'limits', 'main.js');
const read = () => readReportFile<LimitsReport>(FIXTURE, { experiment: 'limits', schema: LIMITS_SCHEMA, measure: 'make limits' });

const scratch = mkdtempSync(path.join(os.tmpdir(), 'limits-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('limits report, from the fixture', () => {
  const report = read();
  const markdown = renderMarkdown(limits, report);
  const lines = markdown.split('\n');
  /** The first table row that starts with these cells, after the line that starts with `heading`. */
  const row = (heading: string, ...first: string[]) => {
    const from = lines.findIndex((line) => line.startsWith(heading));
    expect(from, heading).toBeGreaterThanOrEqual(0);
    return lines.slice(from).find((line) => line.startsWith(`| ${first.join(' | ')} |`));
  };

  it('gives the p99 at half a core beside no limit, with the throttled periods of that case', () => {
    const run = report.cpu.find((r) => r.title === '04-evented')!;
    const free = run.cases.find((c) => c.cores === null)!;
    const half = run.cases.find((c) => c.cores === 0.5 && c.periodUs === 100_000)!;
    const cells = row('### At half a core', '04-evented', String(half.threads))!.split(' | ');
    expect(cells[2]).toBe((free.load.latencyUs.p99 / 1000).toFixed(1));
    expect(cells[3]).toBe((half.load.latencyUs.p99 / 1000).toFixed(1));
    expect(cells[4]).toBe(`${half.throttle.throttled} of ${half.throttle.periods}`);
  });

  it('names what ended each memory run and which clients lost their connection', () => {
    const lab02 = report.memory.find((r) => r.lab === '02-process-per-connection')!;
    const lab04 = report.memory.find((r) => r.lab === '04-evented')!;
    expect(row('## Memory', '02-process-per-connection', String(lab02.held))).toContain('OOM kill: the OOM killer killed');
    expect(row('## Memory', '04-evented', String(lab04.held))).toContain(`nothing: held all ${report.config.memory.ceiling} (the ceiling)`);
    for (const lost of lab02.lostClients) expect(markdown).toContain(`- client ${lost.client} (joined in step ${lost.joined}):`);
    expect(markdown).toContain('the parent is gone (Channel closed); exiting before serving anyone   (×'); // lab 02's children, as logged
  });

  it('draws one latency chart per lab variant, throttled slices shaded, and the memory chart, as SVG', async () => {
    const images = limits.render(report).charts!.map((chart) => ({ file: chartFile('limits', chart), spec: chart.spec }));
    expect(images.map((i) => i.file)).toEqual([...report.cpu.map((r) => `limits-cpu-${r.title.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '').toLowerCase()}.svg`), 'limits-memory.svg']);
    for (const image of images.slice(0, -1)) expect(markdown).toContain(`](${image.file})`);
    const lab04 = images.find((i) => i.file === 'limits-cpu-04-evented.svg')!;
    const svg = await toSvg(lab04.spec);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('04-evented: p99 latency per 100 ms');
    // One shaded rect per 100 ms slice in which cpu.stat counted a throttled period.
    const slices = report.cpu.find((r) => r.title === '04-evented')!.cases.flatMap((c) => c.throttleOverTime.filter((t) => t.throttled > 0 && c.buckets.some((b) => b.tMs === t.tMs)));
    expect(slices.length).toBeGreaterThan(0);
    expect(svg.match(/aria-roledescription="rect mark" d="[^"]*" fill="#d62728" opacity="0.25"/g)?.length).toBe(slices.length);
    const memory = await toSvg(images.at(-1)!.spec);
    for (const run of report.memory) expect(memory).toContain(`>${run.title}<`);
  });

  it('writes the report and its images beside it', async () => {
    const file = path.join(scratch, 'limits.md');
    const written = await writeReport(limits, report, file, FIXTURE);
    expect(readdirSync(scratch).sort()).toEqual(written.map((w) => path.basename(w)).sort());
    expect(written.map((w) => path.basename(w))).toContain('limits-summary.svg');
  });
});

describe('the paced load\'s schedule', () => {
  it('is the same for the same seed, in order, inside the window, at about the rate asked', () => {
    const schedule = poissonSchedule(250, 4000, 1);
    expect(poissonSchedule(250, 4000, 1)).toEqual(schedule);
    expect(poissonSchedule(250, 4000, 2)).not.toEqual(schedule);
    expect(schedule.every((t, i) => t >= (schedule[i - 1] ?? 0) && t < 4000)).toBe(true);
    // 1000 arrivals expected; a Poisson count's standard deviation is about 32.
    expect(schedule.length).toBeGreaterThan(850);
    expect(schedule.length).toBeLessThan(1150);
  });
});

describe('limits without a writable cgroup', () => {
  it('says so in one line and exits with status 2', () => {
    // As root where groups can be made, drop to nobody: it may not make them. It keeps one
    // capability, CAP_DAC_READ_SEARCH (read any file, write none), so it reads the checkout
    // whoever may read it: a clone under /root or a 0700 `mktemp -d` is not readable by nobody,
    // and node exited 1 there. Not root, or root where none can be made: run as this user.
    const root = process.getuid?.() === 0;
    const groupsHere = probeCgroups().setup !== undefined;
    const readAnything = ['--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search'];
    const command = root && groupsHere ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...readAnything, process.execPath, MAIN]] : [process.execPath, [MAIN]];
    const args = ['--parts', 'memory', '--labs', '04-evented', '--output', path.join(scratch, 'none.json'), '--markdown', path.join(scratch, 'none.md')];
    const result = spawnSync(command[0] as string, [...(command[1] as string[]), ...args], { encoding: 'utf8', timeout: 30_000 });
    if (!root && groupsHere) return expect(result.status).toBe(0); // a delegated group: it may run
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^limits: .*(no group can be made|no cgroup)/);
  });
});

const probe = probeCgroups();
const setup = probe.setup;
const ours = () => (setup ? groupsOnDisk(setup).filter((dir) => path.basename(dir).startsWith(`io-lab-limits-${process.pid}-`)) : []);

describe.runIf(setup !== undefined)('limits under real cgroups', () => {
  afterEach(async () => {
    await stopAllLabs();
    removeAllGroups();
  });

  it('throttles a quota of a quarter core and not the same load without a limit', async () => {
    const run = await measureCpuLab(
      setup!,
      { lab: '04-evented', variant: '', title: '04-evented', args: [], connections: 2 },
      { cases: [{ cores: null, periodUs: 100_000 }, { cores: 0.25, periodUs: 100_000 }], seconds: 1.5, ratePerSec: 250, workUs: 1000, connections: 2, bucketMs: 100, cores: 2 },
      () => {},
    );
    const [free, quota] = run.cases;
    expect(free!.throttle.throttled).toBe(0);
    expect(quota!.throttle.throttled).toBeGreaterThan(0);
    expect(quota!.throttle.throttledMs).toBeGreaterThan(0);
    expect(free!.load.errors + quota!.load.errors).toBe(0);
    expect(ours()).toEqual([]);
  }, 40_000);

  it('reports how lab 02 fails under a memory cap and that lab 04 held its clients', async () => {
    const config = { capBytes: 256 * 2 ** 20, ceiling: 60, maxSeconds: 30, probeTimeoutMs: 10_000 };
    const lab02 = await measureMemoryLab(setup!, { lab: '02-process-per-connection', title: '02', args: [] }, config, () => {});
    // A child process per client: the cap ends it well before 60 clients, by the OOM killer.
    expect(lab02.outcome.kind).toBe('oom-kill');
    expect(lab02.final.oomKills).toBeGreaterThan(0);
    expect(lab02.held).toBeLessThan(config.ceiling);
    // Whoever lost a connection after an echo is named, with its echo count.
    for (const lost of lab02.lostClients) expect(lost.echoes).toBeGreaterThan(0);
    const lab04 = await measureMemoryLab(setup!, { lab: '04-evented', title: '04', args: [] }, config, () => {});
    expect(lab04.outcome.kind).toBe('ceiling');
    expect(lab04.held).toBe(config.ceiling);
    expect(lab04.lostClients).toEqual([]);
    expect(lab04.final.oomKills).toBe(0);
    expect(ours()).toEqual([]);
  }, 60_000);

  it('removes the group when the lab fails to start', async () => {
    await expect(
      measureCpuLab(setup!, { lab: '04-evented', variant: '', title: '04-evented', args: ['--no-such-flag'], connections: 1 }, { cases: [{ cores: null, periodUs: 100_000 }], seconds: 1, ratePerSec: 10, workUs: 0, connections: 1, bucketMs: 100, cores: 2 }, () => {}),
    ).rejects.toThrow(/exited before printing/);
    expect(liveGroups()).toEqual([]);
    expect(ours()).toEqual([]);
  }, 30_000);

  it('removes its groups and the lab in them on Ctrl-C', async () => {
    const child = spawn(process.execPath, [MAIN, '--parts', 'cpu', '--labs', '04-evented', '--seconds', '20', '--output', path.join(scratch, 'int.json'), '--markdown', path.join(scratch, 'int.md')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const mine = () => groupsOnDisk(setup!).filter((dir) => path.basename(dir).startsWith(`io-lab-limits-${child.pid}-`));
      // The group is made and the lab is in it, under load.
      const dirs = await eventually(() => (stderr.includes('cpu: 04-evented') && mine().length > 0 ? mine() : undefined), 20_000, 'the run to make its group');
      const lab = await eventually(() => {
        const pids = readFileSync(path.join(dirs[0]!, 'cgroup.procs'), 'utf8').trim();
        return pids ? Number(pids.split('\n')[0]) : undefined;
      }, 20_000, 'the lab in the group');
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(mine()).toEqual([]);
      await eventually(() => (existsSync(`/proc/${lab}`) ? undefined : true), 5_000, `lab pid ${lab} to be gone`);
      expect(stderr).toContain('SIGINT: stopping; removing the cgroups made (all removed)');
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);
});
