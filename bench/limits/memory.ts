/**
 * The memory half of the limits experiment: one lab under a memory cap, clients added until
 * something gives or a ceiling of connections is reached.
 *
 *   1. Make a group with the cap, start the lab inside it (echo protocol, its own defaults, per-
 *      client lines on: they are part of what the server logged) and weigh it at rest.
 *   2. Add clients in steps (each step a quarter more, at least one), from outside the group.
 *      After each step every client still connected sends a probe of its own (its number and the
 *      step) and checks that exactly that comes back: a client is *held* when it did. Then weigh
 *      the tree (RSS, PSS) and read the group's counters (usage, OOM kills, limit hits).
 *   3. Stop at the first step where anything failed: the server process is gone; a client that had
 *      had its echoes lost its connection (which client, after how many echoes, with how many
 *      bytes of a probe unanswered); a new client was refused (the connection failed, or the server
 *      closed it before its first echo); a new client was never answered (it waits, as in a serial
 *      server's accept queue); or the OOM killer ran. Or stop at the ceiling, or after `maxSeconds`.
 *   4. Give the kernel and the server a moment (more kills may follow one), read everything once
 *      more, keep what the server logged that is not routine, stop it and remove the group.
 *
 * Nothing an accepted, acknowledged client had may vanish silently: every client is followed from
 * its connect to the end, and each one that lost its connection is listed with what it lost.
 */

import type net from 'node:net';
import { startLabThrough } from '../../harness/launch.js';
import { openConnection } from '../load/hold.js';
import { Signal } from '../load/signal.js';
import { treeMemory } from '../../harness/processes.js';
import { joinGroup, makeGroup, removeGroup, type CgroupSetup, type MemoryStat } from './cgroup.js';

export interface MemoryConfig {
  readonly capBytes: number;
  /** Most clients to add: the lab "held them all" when it got here. */
  readonly ceiling: number;
  /** Longest a lab's whole run may take. */
  readonly maxSeconds: number;
  /** Longest one step's probe waits for every answer (a client still unanswered then is "unanswered"). */
  readonly probeTimeoutMs: number;
}

export interface MemoryStep {
  readonly step: number;
  /** Clients connected so far, this step's included. */
  readonly clients: number;
  /** Clients whose probe came back exactly in this step. */
  readonly held: number;
  readonly lost: number;
  readonly refused: number;
  readonly unanswered: number;
  readonly rssBytes: number;
  readonly pssBytes: number | null;
  readonly processes: number;
  readonly group: MemoryStat;
  readonly atMs: number;
}

/** A client that had had echoes and then lost its connection. */
export interface LostClient {
  readonly client: number;
  /** The step it joined in. */
  readonly joined: number;
  readonly echoes: number;
  /** Bytes of its last probe that had not come back when the connection went. */
  readonly unansweredBytes: number;
  readonly how: string;
  readonly atMs: number;
}

export type MemoryOutcome =
  | { readonly kind: 'ceiling' }
  | { readonly kind: 'time' }
  | { readonly kind: 'server-died'; readonly detail: string }
  | { readonly kind: 'oom-kill'; readonly detail: string }
  | { readonly kind: 'lost'; readonly detail: string }
  | { readonly kind: 'refused'; readonly detail: string }
  | { readonly kind: 'unanswered'; readonly detail: string };

export interface MemoryLabRun {
  readonly lab: string;
  readonly title: string;
  readonly args: readonly string[];
  readonly capBytes: number;
  readonly rest: { readonly rssBytes: number; readonly pssBytes: number | null; readonly usageBytes: number };
  readonly steps: readonly MemoryStep[];
  /** What ended the run (the first thing that failed, or the ceiling). */
  readonly outcome: MemoryOutcome;
  /** Clients still answering at the end (a last probe after the run stopped). */
  readonly held: number;
  /** Clients still connected whose last probe got no answer (waiting, as in a serial server's queue). */
  readonly waiting: number;
  readonly lostClients: readonly LostClient[];
  readonly refusedClients: number;
  readonly final: MemoryStat;
  readonly serverExit: { readonly code: number | null; readonly signal: string | null } | null;
  /** What the server printed that is not a routine per-client line, with repeats counted. */
  readonly serverLog: readonly { readonly line: string; readonly count: number }[];
}

interface Client {
  readonly id: number;
  readonly joined: number;
  readonly socket: net.Socket;
  echoes: number;
  probe: Buffer | undefined;
  received: number;
  state: 'open' | 'lost' | 'refused';
  how?: string;
}

/** After the run stops: time for a second kill or the server's log line to follow the first. */
const SETTLE_MS = 1_000;
/** Handshakes in flight at once while a step opens its clients. */
const OPEN_CONCURRENCY = 50;

const routine = /\] client \S+ (connected|disconnected|closed|handed to child|left)/;

export async function measureMemoryLab(
  setup: CgroupSetup,
  target: { lab: string; title: string; args: readonly string[] },
  config: MemoryConfig,
  onStep: (what: string) => void,
): Promise<MemoryLabRun> {
  // Step 1.
  const group = makeGroup(setup);
  group.setMemory(config.capBytes);
  const join = joinGroup(group);
  const lab = await startLabThrough(join.prefix, target.lab, ['--protocol', 'echo', ...target.args], join.env).catch((error: unknown) => {
    removeGroup(group);
    throw error;
  });
  const started = performance.now();
  const since = () => Math.round(performance.now() - started);
  const clients: Client[] = [];
  const lostClients: LostClient[] = [];
  const changed = new Signal();
  let serverExit: MemoryLabRun['serverExit'] = null;
  lab.child.once('exit', (code, signal) => {
    serverExit = { code, signal };
    changed.notify();
  });

  const follow = (client: Client) => {
    const end = (how: string) => {
      if (client.state !== 'open') return;
      if (client.echoes === 0) {
        client.state = 'refused';
        client.how = how;
      } else {
        client.state = 'lost';
        lostClients.push({ client: client.id, joined: client.joined, echoes: client.echoes, unansweredBytes: client.probe ? client.probe.length - client.received : 0, how, atMs: since() });
      }
      changed.notify();
    };
    client.socket.on('data', (chunk: Buffer) => {
      const probe = client.probe;
      if (!probe || client.received + chunk.length > probe.length || chunk.compare(probe, client.received, client.received + chunk.length) !== 0) {
        client.socket.destroy();
        return end('its echo differed from what it sent');
      }
      client.received += chunk.length;
      if (client.received === probe.length) {
        client.echoes++;
        client.probe = undefined;
        changed.notify();
      }
    });
    client.socket.on('error', (error: NodeJS.ErrnoException) => end(`connection failed (${error.code ?? error.message})`));
    client.socket.on('close', () => end('the server closed the connection'));
  };

  /** Every open client sends a probe of its own; who answered exactly, who did not (yet). */
  const probeAll = async (label: string, untilEvent: boolean) => {
    const probing = clients.filter((c) => c.state === 'open');
    for (const client of probing) {
      client.probe = Buffer.from(`client ${client.id} ${label}\n`);
      client.received = 0;
      client.socket.write(client.probe);
    }
    const probeStart = performance.now();
    const oomBefore = group.memoryStat().oomKills;
    // Every answer is waited for (a forking server's children start slowly on a busy machine),
    // unless `untilEvent` and the OOM killer or the server's end has already said how it went.
    await changed.until(
      () =>
        probing.every((c) => c.state !== 'open' || c.probe === undefined) ||
        (untilEvent && (serverExit !== null || group.memoryStat().oomKills > oomBefore)) ||
        performance.now() - probeStart > config.probeTimeoutMs,
      100,
    );
    return {
      held: probing.filter((c) => c.state === 'open' && c.probe === undefined).length,
      unanswered: probing.filter((c) => c.state === 'open' && c.probe !== undefined).length,
      waitedMs: performance.now() - probeStart,
    };
  };

  try {
    const rest = treeMemory(lab.pid);
    const restGroup = group.memoryStat();
    const steps: MemoryStep[] = [];
    let refusedConnects = 0;
    let outcome: MemoryOutcome | undefined;
    for (let step = 1; !outcome; step++) {
      // Step 2: a quarter more clients.
      const open = clients.filter((c) => c.state === 'open').length;
      const batch = Math.min(config.ceiling - clients.length, Math.max(1, Math.ceil(open / 4)));
      const oomBefore = group.memoryStat().oomKills;
      const lostBefore = lostClients.length;
      let next = 0;
      let refusedNow = 0;
      const firstId = clients.length;
      await Promise.all(
        Array.from({ length: Math.min(OPEN_CONCURRENCY, batch) }, async () => {
          while (next < batch) {
            const id = firstId + next++;
            const result = await openConnection({ host: lab.host, port: lab.port, connectTimeoutMs: 5_000 }, id);
            if ('error' in result) {
              refusedConnects++;
              refusedNow++;
              continue;
            }
            const client: Client = { id, joined: step, socket: result.socket, echoes: 0, probe: undefined, received: 0, state: 'open' };
            clients.push(client);
            follow(client);
          }
        }),
      );
      onStep(`${target.title}: step ${step}, ${clients.length} clients`);
      const { held, unanswered, waitedMs } = await probeAll(`step ${step}`, true);
      const refusedStep = refusedNow + clients.filter((c) => c.joined === step && c.state === 'refused').length;
      const tree = treeMemory(lab.pid);
      const stat = group.memoryStat();
      steps.push({
        step,
        clients: clients.length + refusedConnects,
        held,
        lost: lostClients.length - lostBefore,
        refused: refusedStep,
        unanswered,
        rssBytes: tree.rssBytes,
        pssBytes: tree.pssBytes ?? null,
        processes: tree.processes,
        group: stat,
        atMs: since(),
      });
      // Step 3: the first failure, in the order a reader wants it named.
      // The OOM killer first: when it killed the server itself, that is the cause of its end.
      if (stat.oomKills > oomBefore) outcome = { kind: 'oom-kill', detail: `the OOM killer killed ${plural(stat.oomKills - oomBefore, 'process', 'processes')} in the group${serverExit ? `; the server process ended (${describeExit(serverExit)})` : ''}` };
      else if (serverExit !== null) outcome = { kind: 'server-died', detail: `the server process ended (${describeExit(serverExit)})` };
      else if (lostClients.length > lostBefore) outcome = { kind: 'lost', detail: `${plural(lostClients.length - lostBefore, 'held client')} lost the connection` };
      else if (refusedStep > 0) outcome = { kind: 'refused', detail: `${plural(refusedStep, 'new client')} refused` };
      else if (unanswered > 0) outcome = { kind: 'unanswered', detail: `${plural(unanswered, 'client')} got no answer within ${(waitedMs / 1000).toFixed(1)} s` };
      else if (clients.length >= config.ceiling) outcome = { kind: 'ceiling' };
      else if (since() > config.maxSeconds * 1000) outcome = { kind: 'time' };
    }

    // Step 4: settle, then one last probe: held is who still answers now.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const { held, unanswered: waiting } = await probeAll('final', false);
    const final = group.memoryStat();
    return {
      lab: target.lab,
      title: target.title,
      args: target.args,
      capBytes: config.capBytes,
      rest: { rssBytes: rest.rssBytes, pssBytes: rest.pssBytes ?? null, usageBytes: restGroup.usageBytes },
      steps,
      outcome,
      held,
      waiting,
      lostClients,
      refusedClients: refusedConnects + clients.filter((c) => c.state === 'refused').length,
      final,
      serverExit,
      serverLog: notable(lab.output()),
    };
  } finally {
    for (const client of clients) {
      client.socket.removeAllListeners('close');
      client.socket.on('error', () => {});
      client.socket.destroy();
    }
    await lab.stop('SIGTERM', 10_000);
    removeGroup(group);
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function describeExit(exit: { code: number | null; signal: string | null }): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit status ${exit.code}`;
}

/** Lines a reader should see: everything on stderr, and stdout's lines that are not per-client routine; repeats folded. */
function notable(output: { stdout: string; stderr: string }): { line: string; count: number }[] {
  const lines = [...output.stdout.split('\n'), ...output.stderr.split('\n')].filter((line) => line.trim() && !routine.test(line) && !/listening on /.test(line));
  const counts = new Map<string, { line: string; count: number }>();
  for (const line of lines) {
    // Peers and pids differ line to line; the same event is one entry with a count.
    const key = line.replace(/\d+(\.\d+)*(:\d+)?/g, 'N');
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { line, count: 1 });
  }
  return [...counts.values()];
}
