/**
 * The system-call experiment: its report renders from a results fixture alone, its explanations
 * follow the numbers, and a short real run under strace against the one-event-loop lab counts
 * the calls an event loop must make.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { LABS } from '../labs/index.js';
import { startLab, stopAllLabs } from '../harness/launch.js';
import { oneEventLoop } from '../bench/kit/labs.js';
import { explain } from '../bench/syscalls/explain.js';
import { measureServer, type PhaseCounts } from '../bench/syscalls/measure.js';
import { SYSCALLS_SCHEMA, type SyscallResults } from '../bench/syscalls/render.js';
import { syscalls } from '../bench/syscalls/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';
import { STAMP } from './helpers/report.js';
import { parseStraceSummary, straceUnavailable } from '../bench/syscalls/trace.js';

afterEach(async () => {
  await stopAllLabs();
});

const phase = (units: number, calls: Record<string, number>, voluntary: number, involuntary: number, errors: Record<string, number> = {}): PhaseCounts => ({
  units,
  calls: Object.fromEntries(Object.entries(calls).map(([name, n]) => [name, { calls: n, errors: errors[name] ?? 0 }])),
  contextSwitches: { voluntary, involuntary },
});

const FIXTURE: SyscallResults = {
  workload: { connections: 10, roundTrips: 100, size: 64, churn: 10 },
  servers: [
    {
      id: 'evented',
      label: 'evented',
      model: 'one thread, epoll',
      counts: {
        connections: 10,
        roundTrip: phase(1000, { read: 1000, write: 1000, epoll_pwait: 100 }, 40, 10),
        connection: phase(10, { accept4: 10, epoll_ctl: 20, read: 20, write: 10, close: 10, epoll_pwait: 30 }, 14, 0),
      },
    },
    {
      id: 'pool',
      label: 'pool',
      model: 'threads',
      counts: {
        connections: 10,
        roundTrip: phase(1000, { read: 1500, write: 1900, futex: 4600, epoll_pwait: 800 }, 1700, 1600),
        connection: phase(10, { accept4: 10, clone3: 0 }, 40, 20),
      },
    },
    {
      id: 'forks',
      label: 'forks',
      model: 'a process each',
      counts: {
        connections: 10,
        roundTrip: phase(1000, { read: 1000, write: 1000, epoll_pwait: 1100 }, 900, 100),
        connection: phase(10, { clone: 110, execve: 10, mmap: 730, sendmsg: 20, recvmsg: 29 }, 160, 33),
      },
    },
    { id: 'missing', label: 'missing', model: 'not built', skipped: 'no C compiler' },
  ],
};

describe('the system-call report', () => {
  const text = renderMarkdown(syscalls, { experiment: 'syscalls', schema: SYSCALLS_SCHEMA, stamp: STAMP, labs: [], results: FIXTURE });

  it('opens with a Summary row per server, and the one it could not measure says why', () => {
    expect(text.split('\n').indexOf('## Summary')).toBeLessThan(40);
    expect(text).toContain('| evented | 2.1 | 0.05 | ');
    expect(text).toContain('| missing | not measured: no C compiler |');
  });

  it('lists each server per round trip and per connection, the most frequent calls first, and the ones it could not measure', () => {
    expect(text).toContain('| evented | 2.10 | read 1.00, write 1.00, epoll_pwait 0.10 | 0 | 0.04 / 0.01 |');
    expect(text).toContain('| pool | 8.80 | futex 4.60, write 1.90, read 1.50, epoll_pwait 0.80 | 0 | 1.70 / 1.60 |');
    expect(text).toContain('| missing | – | not measured: no C compiler | – | – |');
    expect(text).toContain('| forks | 89.9 | mmap 73.0, clone 11.0, recvmsg 2.90, sendmsg 2.00, execve 1.00 | 0 | 16.0 / 3.30 |');
  });

  it('explains each model from its own numbers', () => {
    expect(text).toContain('It waited in epoll_pwait 0.10 times per round trip: each wait returned about 10 ready sockets of the 10 open');
    expect(text).toContain('Threads handed work to each other: 4.6 futex calls per round trip');
    expect(text).toContain('Each connection started 11 threads or processes (clone), 1.0 of them a new program (execve), with 73 mmap calls to load it.');
    expect(text).not.toMatch(/\*\*evented\*\*[^\n]*futex/);
  });
});

describe('the explanation of a completion-model server (io_uring)', () => {
  const phase = (units: number, calls: Record<string, number>): PhaseCounts => ({
    units,
    calls: Object.fromEntries(Object.entries(calls).map(([name, n]) => [name, { calls: n, errors: 0 }])),
    contextSwitches: { voluntary: 0, involuntary: 0 },
  });
  const connection = phase(50, { io_uring_enter: 150, getpeername: 50 });

  it('says no read or write moved the bytes, and how many round trips one io_uring_enter served', () => {
    const sentences = explain(phase(20_000, { io_uring_enter: 3_000, epoll_pwait: 10 }), connection, 10).join(' ');
    expect(sentences).toContain('No read or write calls moved the bytes (0.00 per round trip)');
    expect(sentences).toContain("It made 0.15 io_uring_enter calls per round trip: each call submitted the operations queued in a loop turn and waited for completions, about 6.7 round trips' worth.");
    expect(sentences).not.toContain('Each round trip took');
  });

  it('says a call per operation when there are two per round trip', () => {
    expect(explain(phase(20_000, { io_uring_enter: 40_000 }), connection, 10).join(' ')).toContain('2.0 io_uring_enter calls per round trip: one per operation submitted');
  });
});

describe('strace -c output', () => {
  it('is read into calls and errors by name, without the total', () => {
    const summary = [
      '% time     seconds  usecs/call     calls    errors syscall',
      '------ ----------- ----------- --------- --------- ----------------',
      ' 94.08    1.223656         237      5155        47 futex',
      '  2.57    0.033458          14      2299           epoll_pwait',
      '------ ----------- ----------- --------- --------- ----------------',
      '100.00    1.300670         111      7454        47 total',
    ].join('\n');
    expect(parseStraceSummary(summary)).toEqual({ futex: { calls: 5155, errors: 47 }, epoll_pwait: { calls: 2299, errors: 0 } });
  });
});

// Generated for the one-event-loop lab of the registry; strace is installed by .ci/run.
for (const lab of LABS.filter((l) => oneEventLoop(l.traits)).slice(0, 1)) {
  describe(`a short run under strace against ${lab.id}`, () => {
    it('counts a read and a write per round trip and at least one epoll wait for every few round trips', async () => {
      expect(straceUnavailable()).toBeUndefined();
      const workload = { connections: 4, roundTrips: 50, size: 64, churn: 3 };
      const counts = await measureServer(() => startLab(lab.id, ['--quiet']), workload, () => {});
      const calls = (name: string) => counts.roundTrip.calls[name]?.calls ?? 0;
      const roundTrips = workload.connections * workload.roundTrips;
      expect(counts.roundTrip.units).toBe(roundTrips);
      expect(calls('read')).toBeGreaterThanOrEqual(roundTrips);
      // libuv writes one echo with writev when two pieces of it were queued together: either call.
      expect(calls('write') + calls('writev')).toBeGreaterThanOrEqual(roundTrips);
      // One wait may serve every ready socket, but never fewer than one wait per round of all four.
      expect(calls('epoll_wait') + calls('epoll_pwait')).toBeGreaterThanOrEqual(workload.roundTrips / 4);
      expect(counts.connection.calls.accept4?.calls ?? 0).toBeGreaterThanOrEqual(workload.churn);
    });
  });
}
