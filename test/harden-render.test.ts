/**
 * results/hardening.md from a results file alone (test/fixtures/hardening-results.json: a trimmed
 * quick run of two labs, one of which made a call its list refused and lost an exchange). The
 * Summary leads with a row per lab, the failure shows in its row and in the findings rather than
 * vanishing, every part the issue asks for has its section, and a skipped part says why.
 */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hardening } from '../bench/harden/main.js';
import { parsePerfCsv } from '../bench/harden/perf.js';
import type { HardenReport } from '../bench/harden/results.js';
import { readReport, renderMarkdown } from '../bench/kit/experiment.js';
import { STAMP } from './helpers/report.js';

const fixture = path.join(import.meta.dirname, 'fixtures', 'hardening-results.json');
const report: HardenReport = { ...readReport(hardening, fixture), stamp: STAMP };
const markdown = renderMarkdown(hardening, report);
const lines = markdown.split('\n');

describe('results/hardening.md', () => {
  it('opens with a Summary row per lab: allowed, made (and refused), served sandboxed, refusals, the blocked probes, CPU per round trip', () => {
    const summary = lines.indexOf('## Summary');
    expect(summary).toBeGreaterThan(0);
    expect(summary).toBeLessThan(10);
    expect(lines).toContain('| 04 evented | 7 | 8 (1 refused) | 1 of 2, 1 problem | refused (EPERM) | refused (EPERM) | green / red | 73.4 |');
    expect(lines).toContain('| 07 completion | 6 | 6 | 1 of 1, nothing lost | refused (EPERM) | refused (EPERM) | green / red | 42.5 |');
    expect(markdown).toContain('![System calls each lab allows itself (its attack surface)](hardening-allowed.svg)');
  });

  it('says what failed in its findings, at most five, as the data has it', () => {
    const findings = lines.filter((line) => line.startsWith('- ') && lines.indexOf(line) < lines.indexOf('## How this run was made') && !line.startsWith('- **'));
    expect(findings).toEqual([
      '- Labs that served every protocol under --sandbox with nothing lost: 1 of 2; not 04 evented.',
      '- Labs whose main process refuses to exec a shell under its sandbox: all 2.',
      '- Labs whose TCP connect probe stayed green while --work-us blocked them: all 2.',
      '- Labs whose echo probe also answered within its deadline then: none of the 2.',
      '- System calls allowed, widest list against narrowest: 04 evented (7) against 07 completion (6), 1.2× as much.',
    ]);
  });

  it('has a section for every part, and a line for every part it skipped', () => {
    for (const heading of ['System calls under load, per lab', 'What code inside the sandbox is refused', 'Why TSYNC', 'io_uring walks past seccomp', 'Health probes', 'perf stat per round trip', 'Port 80 without root', 'A lab in its own network namespace', 'The systemd unit']) {
      expect(lines, heading).toContain(`## ${heading}`);
    }
    expect(lines).toContain('| 04 evented | files | 7 | 7 | 313 | faccessat2 | 5 | files: GET / HTTP/1.1: HTTP/1.1 404 Not Found, 10 body bytes | 0 |');
    expect(lines).toContain('| unrestricted | refused (EPERM) | directory made |');
    expect(lines).toContain('| restricted | refused (EPERM) | refused (EACCES) |');
    expect(lines).toContain('| on the main thread only | not refused | refused (EPERM) |');
    expect(markdown).toMatch(/\| 04 evented \| green, [\d.]+ ms \| green, [\d.]+ ms \| green, [\d.]+ ms \| green, [\d.]+ ms \| green, [\d.]+ ms \| red, no answer within 500 ms \| red, refused \| red, refused \|/);
    expect(markdown).toContain('| none | 04-evented: cannot listen on 127.0.0.1:80: permission denied (ports below 1024 need privileges) | – | – |');
    expect(markdown).toMatch(/\| CAP_NET_BIND_SERVICE only \| listening on 127\.0\.0\.1:80 .*\| 0000000000000400 \| echo probe 127\.0\.0\.1:80: green, echoed/);
    expect(markdown).toMatch(/- Skipped perf stat hardware counters: this machine's perf has no hardware counters .*software counters only\./);
    expect(markdown).toMatch(/^- tc netem: .*no sch_netem.*\.$/m);
    expect(markdown).toContain('scored an instance 1.1 OK');
    expect(markdown).toContain('`make harden HARDEN_ARGS=--render-only` renders it again');
  });
});

describe('perf stat CSV', () => {
  it('reads each counter, and a counter perf could not count or does not support as null', () => {
    const csv = ['# started on Sun Dec  6 21:49:01 2026', '', '1.00,msec,task-clock,997623,100.00,0.010,CPUs utilized', '12,,context-switches,997623,100.00,1.002,K/sec', '<not counted>,,cpu-migrations,0,100.00,,', '<not supported>,,cycles,0,100.00,,'].join('\n');
    expect(parsePerfCsv(csv)).toEqual({ 'task-clock': 1, 'context-switches': 12, 'cpu-migrations': null, cycles: null });
  });
});
