/**
 * The Nagle experiment: the report renders from a results fixture alone and says what its
 * numbers say, and a short real run against the one-event-loop lab moves every byte it claims to
 * (small writes echoed back whole, split requests answered with the body they sent). No timing is
 * asserted: how long a stall lasts is the report's to measure, not a test's.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { LABS } from '../labs/index.js';
import { startLab, stopAllLabs } from '../harness/launch.js';
import { REQUEST_PATTERNS, smallWrites, splitWrites, type SplitWritesResult } from '../bench/nagle/measure.js';
import { NAGLE_SCHEMA, type NagleResults } from '../bench/nagle/render.js';
import { nagle } from '../bench/nagle/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';
import { STAMP } from './helpers/report.js';
import { oneEventLoop } from '../bench/kit/labs.js';

afterEach(async () => {
  await stopAllLabs();
});

const split = (pattern: SplitWritesResult['pattern'], clientNoDelay: boolean, roundTripMs: number[]): SplitWritesResult => ({
  pattern,
  clientNoDelay,
  roundTripMs,
  clientAtoMs: 40,
});

const FIXTURE: NagleResults = {
  server: { id: 'evented', label: 'evented', model: 'one thread' },
  rounds: 4,
  smallWrites: [
    { writeSize: 1, noDelay: false, bytes: 1000, seconds: 0.5, writes: 1000, segmentsOut: 50, clientCpuMs: 300, serverCpuMs: 200 },
    { writeSize: 1, noDelay: true, bytes: 1000, seconds: 0.4, writes: 1000, segmentsOut: 200, clientCpuMs: 310, serverCpuMs: 250 },
    { writeSize: 1024, noDelay: false, bytes: 1024, seconds: 0.001, writes: 1, segmentsOut: 1, clientCpuMs: 1, serverCpuMs: 0 },
  ],
  splitWrites: [
    {
      serverNoDelay: true,
      splitReplies: false,
      results: [split('two writes', false, [0.4, 44, 43, 45]), split('two writes', true, [0.3, 0.05, 0.04, 0.05]), split('two writes, MSG_MORE', false, [0.2, 0.05, 0.04, 0.04]), split('two writes, TCP_CORK', false, [0.2, 0.04, 0.05, 0.04])],
    },
    { serverNoDelay: false, splitReplies: true, results: [split('one write', true, [2, 42, 44, 44])] },
    { serverNoDelay: true, splitReplies: true, results: [split('one write', true, [1, 0.1, 0.1, 0.1])] },
  ],
};

const render = (results: NagleResults) => renderMarkdown(nagle, { experiment: 'nagle', schema: NAGLE_SCHEMA, stamp: STAMP, labs: [], results });

describe('the Nagle report', () => {
  const text = render(FIXTURE);

  it('opens with the split-write round trips and what they compare', () => {
    expect(text.split('\n').findIndex((line) => line === '## Summary')).toBeLessThan(40);
    expect(text).toContain('| request as two writes, client Nagle on | 44 | 45 | 3 |');
    expect(text).toContain('![Median HTTP round trip by how it was written (ms)](nagle-summary.svg)');
    expect(text).toContain('- Median round trip with the request in two writes: request as two writes, client Nagle on (44) against request as two writes, client TCP_NODELAY (0.05), 870× as much.');
  });

  it('tabulates small writes and split writes', () => {
    expect(text).toContain('| 1 B | off | 1,000 | 0.00 | 50 | 20 | 300 | 200 |');
    expect(text).toContain('| on | one write | off | two writes | 44 | 45 | 45 | 3 | 0.40, 44, 43, 45 |');
    expect(text).toContain('| off | head, then body | on | one write | 43 | 44 | 44 | 3 | 2.0, 42, 44, 44 |');
  });

  it('explains the stall from the numbers, and says when Nagle did not coalesce', () => {
    expect(text).toContain('with Nagle on at the client, took 44 ms per round trip (median of 4); with TCP_NODELAY, 0.05 ms.');
    // Median of an even count: the mean of the middle two.
    expect(text).toContain('The first round trip was fast (0.40 ms): a new connection starts in quick-ACK mode');
    expect(text).toContain('MSG_MORE on the first write (0.04 ms) and TCP_CORK around both writes (0.04 ms)');
    expect(text).toContain('took 43 ms per round trip against 0.10 ms with TCP_NODELAY');
    expect(text).toContain('Nagle holds a small write back');
    const noCoalescing = render({ ...FIXTURE, smallWrites: FIXTURE.smallWrites.map((r) => (r.noDelay ? { ...r, segmentsOut: 10 } : r)) });
    expect(noCoalescing).toContain('Here Nagle did not send fewer segments');
  });
});

// Generated for the one-event-loop lab of the registry, the server the experiment measures.
for (const lab of LABS.filter((l) => oneEventLoop(l.traits)).slice(0, 1)) {
  describe(`a short real run against ${lab.id}`, () => {
    it('echoes small writes back whole with and without TCP_NODELAY, counting segments', async () => {
      const echo = await startLab(lab.id, ['--quiet']);
      for (const noDelay of [false, true]) {
        const result = smallWrites(echo.host, echo.port, echo.pid, { bytes: 16 * 1024, writeSize: 16, noDelay });
        expect(result.writes).toBe(1024);
        expect(result.segmentsOut).toBeGreaterThan(0);
        expect(result.segmentsOut).toBeLessThanOrEqual(result.writes);
      }
    });

    it('answers every request pattern with the body it sent, against a server that splits its replies with Nagle on', async () => {
      const server = await startLab(lab.id, ['--quiet', '--protocol', 'http', '--no-nodelay', '--split-replies']);
      for (const pattern of REQUEST_PATTERNS) {
        const result = splitWrites(server.host, server.port, { pattern, clientNoDelay: true, rounds: 3 });
        expect(result.roundTripMs).toHaveLength(3);
      }
    });
  });
}
