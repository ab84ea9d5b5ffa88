/**
 * Renders results/hardening.md from its JSON alone: a Summary row per lab (its allow-list against
 * the calls it made under load, what it served sandboxed, what its sandbox refuses, the echo
 * probe while blocked, CPU per round trip), a chart of the allow-lists, findings as typed data,
 * then a section per part. No lab is named here: rows come from the results file.
 */

import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { check, compare, type Finding } from '../kit/findings.js';
import { cellText, ms, thousands } from '../kit/format.js';
import { labLabel } from '../kit/labs.js';
import { once, type Row, type Table } from '../kit/table.js';
import { PERF_EVENTS } from './perf.js';
import { PROBE_STATES, type ProbeCell, type ProbeRow } from './probes.js';
import type { HardenReport, HardenResults, LabRefusals, TracedProtocol } from './results.js';

export { HARDEN_SCHEMA, type HardenReport } from './results.js';

/** Per lab, from the results: what the Summary row and the findings read. */
interface LabFacts {
  readonly id: string;
  readonly label: string;
  readonly allowed: number;
  readonly seen: readonly string[];
  /** Calls made that the list did not allow: each was refused (EPERM), which the lab survived or not. */
  readonly refused: readonly string[];
  readonly protocols: number;
  readonly servedClean: number;
  readonly lost: number;
  readonly exec?: string;
  /** exec under the narrower list of the lab's child processes, where it has them. */
  readonly execChild?: string;
  readonly open?: string;
  readonly openFiles?: string;
  readonly probes?: ProbeRow;
  readonly cpuUsPerRoundTrip?: number;
}

const used = (run: TracedProtocol) => Object.keys(run.calls).filter((name) => run.calls[name]!.calls > 0);

function facts(report: HardenReport): LabFacts[] {
  const r = report.results;
  const ids = [...new Set([...r.traced.map((t) => t.lab), ...r.probes.map((p) => p.lab.split(' ')[0]!), ...report.labs.map((l) => l.id)])];
  return report.labs
    .filter((lab) => ids.includes(lab.id))
    .map((lab) => {
      const runs = r.traced.filter((t) => t.lab === lab.id);
      const seen = [...new Set(runs.flatMap(used))].sort();
      const refused = [...new Set(runs.flatMap((run) => used(run).filter((name) => !run.allowed.includes(name))))].sort();
      const byProtocol = new Map<string, boolean>();
      for (const run of runs) byProtocol.set(run.protocol, (byProtocol.get(run.protocol) ?? true) && run.problems.length === 0 && run.exitCode === 0);
      const refusal = (protocol: string) => r.refusals.find((x) => x.lab === lab.id && x.protocol === protocol && !x.child);
      const childRefusal = r.refusals.find((x) => x.lab === lab.id && x.child);
      const perf = r.perf.find((p) => p.lab.split(' ')[0] === lab.id || p.lab === lab.id || p.lab.startsWith(`${lab.id} `));
      const taskClock = perf?.counts['task-clock'];
      return {
        id: lab.id,
        label: lab.label,
        allowed: Math.max(0, ...runs.map((run) => run.allowed.length)),
        seen,
        refused,
        protocols: byProtocol.size,
        servedClean: [...byProtocol.values()].filter(Boolean).length,
        lost: runs.reduce((n, run) => n + run.problems.length, 0),
        ...(refusal('echo') ? { exec: refusal('echo')!.exec, open: refusal('echo')!.open } : {}),
        ...(refusal('files') ? { openFiles: refusal('files')!.open } : {}),
        ...(childRefusal ? { execChild: childRefusal.exec } : {}),
        ...(r.probes.find((p) => p.lab === lab.id || p.lab.startsWith(`${lab.id} `)) ? { probes: r.probes.find((p) => p.lab === lab.id || p.lab.startsWith(`${lab.id} `))! } : {}),
        ...(perf && taskClock != null && perf.roundTrips > 0 ? { cpuUsPerRoundTrip: (taskClock * 1000) / perf.roundTrips } : {}),
      };
    });
}

const probeText = (cell: ProbeCell | undefined) => (cell ? `${cell.ok ? 'green' : 'red'}, ${cell.ok ? `${ms(cell.ms)} ms` : cell.detail}` : '–');
const refusedText = (outcome: string | undefined) => (outcome === undefined ? '–' : outcome === 'done' ? 'not refused' : `refused (${outcome})`);

function summaryTable(labs: readonly LabFacts[]): Table {
  const rows: Row[] = labs.map((lab) => ({
    label: lab.label,
    cells: [
      lab.allowed ? { summary: once(lab.allowed) } : { text: '–' },
      lab.seen.length ? { summary: once(lab.seen.length), ...(lab.refused.length ? { text: `(${lab.refused.length} refused)` } : {}) } : { text: '–' },
      lab.protocols ? { text: `${lab.servedClean} of ${lab.protocols}${lab.lost ? `, ${lab.lost} problem${lab.lost === 1 ? '' : 's'}` : ', nothing lost'}` } : { text: '–' },
      { text: `${refusedText(lab.exec)}${lab.execChild === undefined ? '' : `; in a child: ${refusedText(lab.execChild)}`}` },
      { text: refusedText(lab.open) },
      { text: lab.probes ? `${probeText(lab.probes.states.blocked.tcp).split(',')[0]} / ${probeText(lab.probes.states.blocked.echo).split(',')[0]}` : '–' },
      lab.cpuUsPerRoundTrip === undefined ? { text: '–' } : { summary: once(lab.cpuUsPerRoundTrip) },
    ],
  }));
  return {
    rowHeader: 'lab',
    columns: [
      { header: 'calls allowed', unit: 'count', explain: "system calls on the lab's seccomp allow-list (Node's own plus the model's; the largest of its protocols' lists)" },
      { header: 'calls made under load', unit: 'count', explain: 'distinct system calls strace counted while the lab, sandboxed, served every protocol it serves and shut down; "refused" are calls it made that its list does not allow' },
      { header: 'protocols served sandboxed', unit: 'count', explain: 'protocols whose every exchange was answered exactly under --sandbox, and whose shutdown exited 0' },
      { header: 'exec /bin/sh', unit: 'count', explain: "code running inside the lab, under its echo allow-list, starts a shell" },
      { header: 'open /etc/passwd', unit: 'count', explain: 'the same code opens a file outside any root (openat); the files allow-list is in the detail' },
      { header: 'blocked: tcp / echo probe', unit: 'count', explain: 'the two health probes while one chunk\'s --work-us runs: a TCP connect, and a line that must come back within the deadline' },
      { header: 'CPU µs per round trip', unit: 'cpuUs', explain: "perf stat's task-clock of the lab's whole tree over the echo round trips, divided by them" },
    ],
    rows,
  };
}

function findings(labs: readonly LabFacts[]): (Finding | undefined)[] {
  const label = (lab: LabFacts) => lab.label;
  const traced = labs.filter((lab) => lab.protocols > 0);
  const refused = labs.filter((lab) => lab.exec !== undefined);
  const probed = labs.filter((lab) => lab.probes);
  const byAllowed = traced.filter((lab) => lab.allowed > 0).sort((a, b) => b.allowed - a.allowed);
  const figure = (lab: LabFacts | undefined) => lab && { row: lab.label, summary: once(lab.allowed) };
  return [
    traced.length ? check('labs that served every protocol under --sandbox with nothing lost', traced, label, (lab) => lab.servedClean === lab.protocols && lab.lost === 0) : undefined,
    refused.length ? check('labs whose main process refuses to exec a shell under its sandbox', refused, label, (lab) => lab.exec !== 'done') : undefined,
    probed.length ? check('labs whose TCP connect probe stayed green while --work-us blocked them', probed, label, (lab) => lab.probes!.states.blocked.tcp.ok) : undefined,
    probed.length ? check('labs whose echo probe also answered within its deadline then', probed, label, (lab) => lab.probes!.states.blocked.echo.ok) : undefined,
    compare('system calls allowed, widest list against narrowest', 'count', figure(byAllowed[0]), figure(byAllowed.at(-1))),
  ];
}

function callsDetail(r: HardenResults, labels: (id: string) => string): string[] {
  if (r.traced.length === 0) return [];
  const lines = [
    '## System calls under load, per lab',
    '',
    'Each lab started with `--sandbox` (deny: EPERM), strace attached to its whole tree once it listened, then every protocol\'s workload and SIGTERM. "Made" counts distinct calls; "refused" are calls made that the list does not hold (each failed with EPERM).',
    '',
    '| lab | protocol | allowed | made | calls counted | refused | exchanges | problems | exit |',
    '|---|---|--:|--:|--:|---|--:|---|--:|',
  ];
  for (const run of r.traced) {
    const made = used(run);
    const total = made.reduce((n, name) => n + run.calls[name]!.calls, 0);
    const refused = made.filter((name) => !run.allowed.includes(name));
    const lab = run.variant ? `${labels(run.lab)} (${run.variant})` : labels(run.lab);
    lines.push(`| ${cellText(lab)} | ${run.protocol} | ${run.allowed.length} | ${made.length} | ${thousands(total)} | ${refused.join(', ') || '–'} | ${run.exchanges} | ${cellText(run.problems.join('; ')) || '–'} | ${run.exitCode ?? '–'} |`);
  }
  lines.push('', '<details><summary>Which calls, by lab (all its protocols and variants), most made first</summary>', '');
  for (const id of [...new Set(r.traced.map((t) => t.lab))]) {
    const counts = new Map<string, number>();
    for (const run of r.traced.filter((t) => t.lab === id)) for (const name of used(run)) counts.set(name, (counts.get(name) ?? 0) + run.calls[name]!.calls);
    const allowedNever = [...new Set(r.traced.filter((t) => t.lab === id).flatMap((t) => t.allowed))].filter((name) => !counts.has(name)).sort();
    lines.push(`- **${labels(id)}**: ${[...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${thousands(n)}`).join(', ')}. Allowed, not seen in this run: ${allowedNever.join(', ') || 'none'}.`);
  }
  lines.push('', '</details>', '');
  return lines;
}

function refusalDetail(r: HardenResults, labels: (id: string) => string): string[] {
  const lines: string[] = [];
  if (r.refusals.length) {
    lines.push(
      '## What code inside the sandbox is refused',
      '',
      "A script installs one lab's allow-list for one protocol (with TSYNC), then tries what an attacker with code in the lab would try first. The filter sees call numbers, never paths: a list that opens files to serve them opens /etc/passwd too (the lab's own root check, a mount namespace or Landlock must keep paths in).",
      '',
      '| lab | list | exec /bin/sh | open /etc/passwd | mkdir (thread pool) | mkdir (main thread) |',
      '|---|---|---|---|---|---|',
      ...r.refusals.map((x: LabRefusals) => `| ${cellText(labels(x.lab))} | ${x.protocol}${x.child ? ", a child's" : ''} | ${refusedText(x.exec)} | ${refusedText(x.open)} | ${refusedText(x.mkdirAsync)} | ${refusedText(x.mkdirSync)} |`),
      '',
    );
  }
  if (r.tsync) {
    lines.push(
      '## Why TSYNC',
      '',
      "Node's own list only; mkdir is not on it. A filter belongs to a thread: installed by the main thread alone it leaves libuv's pool, where `fs.mkdir` runs, unfiltered.",
      '',
      '| filter installed | mkdir (thread pool) | mkdir (main thread) |',
      '|---|---|---|',
      `| on every thread (TSYNC) | ${refusedText(r.tsync.with.mkdirAsync)} | ${refusedText(r.tsync.with.mkdirSync)} |`,
      `| on the main thread only | ${refusedText(r.tsync.without.mkdirAsync)} | ${refusedText(r.tsync.without.mkdirSync)} |`,
      '',
    );
  }
  if (r.uring) {
    lines.push(
      '## io_uring walks past seccomp',
      '',
      'A filter refusing mkdir, and a ring made before it: IORING_OP_MKDIRAT is an operation the kernel performs for the ring, not a system call, so no filter sees it. A ring restricted to the opcodes the lab uses (IORING_REGISTER_RESTRICTIONS) refuses it.',
      '',
      '| ring | mkdir system call | IORING_OP_MKDIRAT on the ring |',
      '|---|---|---|',
      ...r.uring.map((u) => `| ${u.ring} | ${refusedText(u.mkdirSyscall)} | ${u.mkdiratOnRing === 'done' ? 'directory made' : `refused (${u.mkdiratOnRing})`} |`),
      '',
    );
  }
  return lines;
}

function namespaceDetail(r: HardenResults, labels: (id: string) => string): string[] {
  const lines: string[] = [];
  const c = r.capabilities;
  if (c) {
    lines.push(
      '## Port 80 without root',
      '',
      `${labels(c.lab)} as nobody (uid 65534) on port 80, in a network namespace of this run (its \`net.ipv4.ip_unprivileged_port_start\`: ${c.unprivilegedPortStart}; the setting is per namespace). \`setpriv --ambient-caps=+net_bind_service\` keeps the one capability across the exec into node; \`setcap\` on the node binary would give it to every script.`,
      '',
      '| capabilities | what the lab said | effective (CapEff) | echo probe from inside |',
      '|---|---|---|---|',
      `| none | ${cellText(c.without.line)} | – | – |`,
      `| CAP_NET_BIND_SERVICE only | ${cellText(c.withCapability.line)} | ${c.withCapability.capEff ?? '–'} | ${cellText(c.withCapability.probe ?? '–')} |`,
      '',
    );
  }
  const v = r.veth;
  if (v) {
    lines.push(
      '## A lab in its own network namespace',
      '',
      `${labels(v.lab)} listening on ${v.labAddress} inside a namespace of its own, reached from this one through a veth pair: ${thousands(v.roundTrips)} echo round trips across it, and the echo probe ${v.probeOk ? 'green' : 'red'} in ${ms(v.probeMs)} ms.`,
      '',
      'skipped' in v.netem ? `- tc netem: ${v.netem.skipped}.` : `- With \`tc netem delay ${(v.netem as { delayMs: number }).delayMs}ms\` on the lab's end: the echo probe took ${ms((v.netem as { probeMs: number }).probeMs)} ms.`,
      '',
    );
  }
  return lines;
}

function probeDetail(r: HardenResults, titled: (title: string) => string): string[] {
  if (r.probes.length === 0) return [];
  const header = PROBE_STATES.map((state) => `${state}: tcp | ${state}: echo`).join(' | ');
  return [
    '## Health probes',
    '',
    `Deadline ${thousands(r.probeSettings.deadlineMs)} ms. Idle: nobody connected. Busy: four clients ping-ponging echoes. Blocked: a second start with \`--work-us ${thousands(r.probeSettings.workUs)}\`, one chunk read and its work running. Draining: SIGTERM sent while a client holds its connection. The TCP probe only connects, which the kernel completes into the accept queue whether or not the lab's loop ever accepts; the echo probe sends a line and needs it back. The HTTP probe (\`make probe PROBE=http\`, \`GET /healthz\`) answers 503 to a request in progress once the drain begins (test/health.test.ts).`,
    '',
    `| lab | ${header} |`,
    `|---|${PROBE_STATES.map(() => '---|---').join('|')}|`,
    ...r.probes.map((p) => `| ${cellText(titled(p.lab))} | ${PROBE_STATES.map((state) => `${cellText(probeText(p.states[state].tcp))} | ${cellText(probeText(p.states[state].echo))}`).join(' | ')} |`),
    '',
  ];
}

function perfDetail(r: HardenResults, titled: (title: string) => string): string[] {
  if (r.perf.length === 0) return [];
  return [
    '## perf stat per round trip',
    '',
    "Counters of the lab's whole tree (inherited by threads and children made while counting), enabled through perf's control FIFO for exactly the echo round trips (64 bytes, closed loop) and divided by them.",
    ...(r.perfNote ? ['', `- ${r.perfNote}.`] : []),
    '',
    `| lab | connections | round trips | ${PERF_EVENTS.map((e) => (e === 'task-clock' ? 'task-clock µs' : e)).join(' | ')} |`,
    `|---|--:|--:|${PERF_EVENTS.map(() => '--:').join('|')}|`,
    ...r.perf.map((p) => {
      const per = PERF_EVENTS.map((event) => {
        const value = p.counts[event];
        if (value == null || p.roundTrips === 0) return '–';
        const each = (event === 'task-clock' ? value * 1000 : value) / p.roundTrips;
        return event === 'task-clock' ? ms(each) : String(Number(each.toPrecision(2)));
      });
      return `| ${cellText(titled(p.lab))} | ${p.connections} | ${thousands(p.roundTrips)} | ${per.join(' | ')} |`;
    }),
    '',
  ];
}

function unitDetail(r: HardenResults): string[] {
  if (!r.unit) return [];
  return [
    '## The systemd unit',
    '',
    `deploy/iolab@.service: \`systemd-analyze verify\` said ${r.unit.verify ? `"${cellText(r.unit.verify)}"` : 'nothing'}; \`systemd-analyze security --offline=yes\` scored an instance ${r.unit.score} ${r.unit.verdict} (a bare unit scores about 9.6 UNSAFE).`,
    '',
  ];
}

export function renderHardening(report: HardenReport): Page {
  const r = report.results;
  const labs = facts(report);
  const labels = (id: string) => labLabel(report.labs, id);
  // A run's title is "ID (variant)": the lab's label in its place.
  const titled = (title: string) => title.replace(/^\S+/, (id) => labels(id));
  return {
    intro:
      'What each I/O model needs from the kernel, and what it gives away: its seccomp allow-list beside the calls it made under load, what its sandbox refuses, how health probes see it, and its cost per round trip in kernel counters; then io_uring, capabilities, namespaces and the systemd unit.',
    summary: summaryTable(labs),
    chart: barChart('allowed', 'System calls each lab allows itself (its attack surface)', 'system calls on the allow-list', labs.filter((l) => l.allowed > 0).map((l) => ({ label: l.label, value: l.allowed }))),
    findings: findings(labs),
    method: [
      `Architecture ${r.arch}.`,
      ...r.skipped.map((s) => `Skipped ${s.part}: ${s.reason}.`.replace(/\.\.$/, '.')),
    ],
    detail: [...callsDetail(r, labels), ...refusalDetail(r, labels), ...probeDetail(r, titled), ...perfDetail(r, titled), ...namespaceDetail(r, labels), ...unitDetail(r)],
  };
}
