/**
 * The backlog experiment (bench/backlog/) against the real labs, with a short hold: the serial
 * lab keeps client 2 in the kernel's accept queue until client 1 leaves, the evented lab answers
 * everyone at once. Margins are wide (a busy 2-core machine); the only timers are the scenario's.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { synRetransmitSchedule } from '../bench/backlog/evidence.js';
import { runScenario } from '../bench/backlog/run.js';
import { clientList } from '../bench/backlog/wording.js';
import { kernelSettings } from '../bench/backlog/kernel.js';
import { backlog } from '../bench/backlog/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';
import { BACKLOG_SCHEMA, type Settings } from '../bench/backlog/results.js';
import { stopAllLabs } from '../harness/launch.js';
import { describeLabs, kernelQueueLab, oneEventLoop } from '../bench/kit/labs.js';
import { LABS } from '../labs/index.js';
import { machineStamp } from '../bench/kit/stamp.js';
import { childPids, stat } from '../harness/processes.js';

const settings: Settings = { holdMs: 1_000, clients: 3, gapMs: 100, clientTimeoutMs: 10_000, sampleMs: 25, userSpaceWaitMs: 50 };
const kernel = kernelSettings();

let abort: AbortController;
beforeEach(() => {
  abort = new AbortController();
});
afterEach(async () => {
  abort.abort(); // ends every client of a run that a failed test left behind
  await stopAllLabs();
});

/** Child processes of this test process that are still alive (zombies do not count). */
const liveChildren = () => childPids(process.pid).filter((pid) => stat(pid)?.state !== 'Z');

// The two models the experiment contrasts, found by their traits in the registry.
const serial = kernelQueueLab(LABS)!.id;
const evented = LABS.find((lab) => oneEventLoop(lab.traits))!.id;

describe('backlog experiment', () => {
  it('serial: client 2 connects at once, waits in the accept queue, and is echoed only after client 1 closes', async () => {
    const run = await runScenario({ kind: 'model', lab: serial }, { settings, kernel, signal: abort.signal });
    const [first, second] = run.clients;
    expect(run.clients.map((c) => c.outcome)).toEqual(['served', 'served', 'served']);
    // Immediate: far below the 1 s a dropped SYN would cost.
    expect(second!.connectMs! - second!.startMs).toBeLessThan(500);
    expect(second!.firstEchoMs!).toBeGreaterThanOrEqual(first!.closeMs!);
    expect(second!.waits.map((w) => w.where)).toContain('accept-queue');
    const held = run.samples.filter((s) => s.t >= first!.connectMs! && s.t <= first!.closeMs!);
    expect(Math.max(...held.map((s) => s.acceptQueueDepth))).toBeGreaterThan(0);
    expect(liveChildren()).toEqual([]);

    const markdown = renderMarkdown(backlog, {
      experiment: 'backlog',
      schema: BACKLOG_SCHEMA,
      stamp: machineStamp('test'),
      labs: describeLabs([serial]),
      settings,
      kernel,
      network: 'shared with the machine',
      wallMs: run.durationMs,
      runs: [run],
    });
    expect(markdown).toContain('| 01-serial | ');
    expect(markdown).not.toContain('```mermaid');
    // Client 2's own row in the run's client table: where it waited and that it was served. The
    // legend names every place whatever happened, so only the row shows what this run measured.
    const row = markdown.split('\n').find((line) => line.startsWith('| 2 | '));
    expect(row, "client 2's row").toBeDefined();
    const cells = row!.split(' | ').map((cell) => cell.replace(/^\| |\s\|$/g, '').trim());
    expect(cells[6]).toMatch(/^kernel accept queue \d/);
    expect(cells[7]).toBe('served');
  });

  it('evented: every client has its first echo within 1 s of connecting', async () => {
    const run = await runScenario({ kind: 'model', lab: evented }, { settings, kernel, signal: abort.signal });
    for (const client of run.clients) {
      expect(client.outcome).toBe('served');
      expect(client.firstEchoMs! - client.connectMs!).toBeLessThan(1_000);
    }
    expect(liveChildren()).toEqual([]);
  });

  it('an aborted run still stops its lab', async () => {
    const long = { ...settings, holdMs: 30_000 };
    const run = await runScenario(
      { kind: 'model', lab: serial },
      { settings: long, kernel, signal: abort.signal, onClient: (client, event) => client === 1 && event === 'echo' && abort.abort() },
    );
    expect(run.clients[0]!.error).toBe('aborted');
    expect(run.durationMs).toBeLessThan(long.holdMs);
    expect(liveChildren()).toEqual([]);
  });
});

describe('backlog evidence helpers', () => {
  it('knows the SYN retransmit schedule of linear-timeout and older kernels', () => {
    expect(synRetransmitSchedule({ ...kernel, synLinearTimeouts: 4, synRetries: 6 })).toEqual([1, 2, 3, 4, 5, 7]);
    expect(synRetransmitSchedule({ ...kernel, synLinearTimeouts: undefined, synRetries: 4 })).toEqual([1, 3, 7, 15]);
  });

  it('names clients the way the report does', () => {
    expect(clientList([2, 3, 4, 6])).toBe('clients 2–4 and 6');
    expect(clientList([2, 3])).toBe('clients 2 and 3');
    expect(clientList([5])).toBe('client 5');
  });
});
