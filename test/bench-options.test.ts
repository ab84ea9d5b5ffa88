/** The benchmark's command line: defaults, the quick preset, lists, targets and bad input. */

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FULL, parseBenchArgs, parseTarget, QUICK } from '../bench/servers/options.js';
import { labVariants } from '../labs/index.js';
import { UserError } from '../shared/errors.js';

describe('bench options', () => {
  it('defaults to the full run over every lab and scenario', () => {
    const settings = parseBenchArgs([]);
    expect(settings.labs).toEqual([...labVariants().map(({ lab, variant }) => (variant.name ? `${lab.id}@${variant.name.replace(/[^A-Za-z0-9]+/g, '-')}` : lab.id)), 'plain-node', 'c-epoll', 'c-threads']);
    expect(settings.scenarios).toEqual(['echo', 'idle', 'http', 'cpu', 'churn', 'capacity']);
    expect(settings.repeats).toBe(3);
    expect(settings.connections).toEqual([1, 10, 100]);
    expect(settings.idle).toEqual([0, 10000, 30000, 100000]);
    expect(settings.idleActive).toBe(1);
    expect(settings.sizes).toEqual([64, 4096]);
    expect(settings.httpConnections).toEqual([100]);
    expect(settings.capacity).toEqual([100, 1000, 10000]);
    expect(settings.workUs).toBe(1000);
    expect(settings.pin).toBe(true);
    expect(settings.target).toBeUndefined();
    expect(settings.output.endsWith(path.join('results', 'bench.json'))).toBe(true);
    expect(settings.markdown.endsWith(path.join('results', 'bench.md'))).toBe(true);
  });

  it('a quick run writes to results/quick/, never over the committed reports', () => {
    const quick = parseBenchArgs(['--quick']);
    expect(quick.output.endsWith(path.join('results', 'quick', 'bench.json'))).toBe(true);
    expect(quick.markdown.endsWith(path.join('results', 'quick', 'bench.md'))).toBe(true);
  });

  it('offers every lab of the registry, in each variant', () => {
    expect(parseBenchArgs([]).labs).toEqual([...labVariants().map(({ lab, variant }) => (variant.name ? `${lab.id}@${variant.name.replace(/[^A-Za-z0-9]+/g, '-')}` : lab.id)), 'plain-node', 'c-epoll', 'c-threads']);
  });

  it('--quick takes the quick preset, and explicit options still win', () => {
    const quick = parseBenchArgs(['--quick']);
    expect(quick.duration).toBe(QUICK.duration);
    expect(quick.repeats).toBe(QUICK.repeats);
    expect(quick.connections).toEqual(QUICK.connections);
    expect(quick.scenarios).toHaveLength(6);
    const mixed = parseBenchArgs(['--quick', '--repeats', '5', '--duration', '1.5']);
    expect(mixed.repeats).toBe(5);
    expect(mixed.duration).toBe(1.5);
    expect(mixed.warmup).toBe(QUICK.warmup);
    expect(parseBenchArgs([]).duration).toBe(FULL.duration);
  });

  it('takes lists with commas or repeated flags', () => {
    expect(parseBenchArgs(['--connections', '1,2', '--connections', '300']).connections).toEqual([1, 2, 300]);
    expect(parseBenchArgs(['--labs', '04-evented,c-epoll']).labs).toEqual(['04-evented', 'c-epoll']);
    expect(parseBenchArgs(['--scenarios', 'echo', '--scenarios', 'churn']).scenarios).toEqual(['echo', 'churn']);
    expect(parseBenchArgs(['--capacity', '10']).capacity).toEqual([10]);
  });

  it('rejects bad input with one clear line', () => {
    const bad = (args: string[], message: RegExp) => {
      expect(() => parseBenchArgs(args)).toThrow(UserError);
      expect(() => parseBenchArgs(args)).toThrow(message);
    };
    bad(['--labs', '05-magic'], /--labs: unknown "05-magic"/);
    bad(['--scenarios', 'latency'], /--scenarios: unknown "latency"/);
    bad(['--connections', '0'], /--connections takes whole numbers from 1 up, got 0/);
    bad(['--sizes', 'big'], /--sizes takes whole numbers/);
    bad(['--repeats', '0'], /--repeats must be a positive whole number/);
    bad(['--duration', '-1'], /--duration must be a positive number/);
    bad(['--target', 'nowhere'], /--target must be HOST:PORT/);
    bad(['--no-such-option'], /^unknown flag --no-such-option \(--help lists every flag\)$/);
  });

  it('--target measures one server elsewhere, with the scenarios its protocol allows', () => {
    expect(parseTarget('10.0.0.7:9000')).toEqual({ host: '10.0.0.7', port: 9000 });
    expect(parseTarget('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    const echo = parseBenchArgs(['--target', 'example.test:7']);
    expect(echo.target).toEqual({ host: 'example.test', port: 7 });
    expect(echo.scenarios).toEqual(['echo', 'churn', 'capacity']);
    expect(parseBenchArgs(['--target', 'example.test:80', '--target-protocol', 'http']).scenarios).toEqual(['http']);
  });

  it('--help lists every option', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/servers/main.ts', '--help'], {
      cwd: path.join(import.meta.dirname, '..'),
      timeout: 30_000,
    });
    // The usage line names the script that runs it (the benchmark's folder is bench/servers/).
    expect(stdout.split('\n')[0]).toBe('node --import tsx bench/servers/main.ts [options]');
    for (const option of [
      '--labs', '--scenarios', '--quick', '--duration', '--warmup', '--repeats', '--connections', '--sizes', '--http-connections',
      '--pipelining', '--http-body-bytes', '--work-us', '--cpu-connections', '--churn-clients', '--capacity', '--output', '--markdown',
      '--target', '--target-protocol', '--pin', '--render-only',
    ]) {
      expect(stdout).toContain(option);
    }
  });
});
