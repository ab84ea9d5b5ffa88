/**
 * The report's explanations, generated from the measured numbers: every sentence about a run is
 * built from its RunFacts, and a sentence whose evidence is absent is simply not said. Only the
 * description of the kernel's mechanism (what a full accept queue does) is fixed text.
 */

import { capital } from '../kit/findings.js';
import { synRetransmitSchedule } from './evidence.js';
import { runFacts } from './facts.js';
import { clientList, duration, moments, range, seconds } from './wording.js';
import type { BacklogReport, ClientRecord, KernelSettings, RunResult } from './results.js';


export function explainRun(run: RunResult, report: BacklogReport): string {
  const f = runFacts(run);
  const sentences: string[] = [];
  const holder = f.holder;
  const others = f.others.length;
  if (holder?.connectMs !== undefined && f.holdToMs !== undefined) {
    sentences.push(
      `Client 1 connected in ${duration(holder.connectMs - holder.startMs)}, had its echo ${duration((holder.firstEchoMs ?? holder.connectMs) - holder.connectMs)} later ` +
        `and held its connection until ${seconds(f.holdToMs)}.`,
    );
  }

  const echoed = f.others.filter((c) => c.firstEchoMs !== undefined);
  if (f.echoedWhileHeld.length === others && others > 0) {
    sentences.push(
      `All ${others} other clients had their echo while client 1 still held its connection, ` +
        `${range(f.echoAfterConnectMs)} after their handshake completed.`,
    );
  } else if (f.echoedWhileHeld.length === 0 && echoed.length > 0 && f.holdToMs !== undefined) {
    const firsts = echoed.map((c) => c.firstEchoMs!);
    sentences.push(
      `None of the ${others} other clients had an echo while client 1 held its connection. ` +
        `Their first echoes came at ${moments(firsts)}, from ${duration(Math.min(...firsts) - f.holdToMs)} after client 1 began to close` +
        (f.servedInArrivalOrder ? ', one after another in the order the clients had arrived.' : '.'),
    );
  } else if (f.echoedWhileHeld.length > 0) {
    sentences.push(`${capital(clientList(f.echoedWhileHeld))} had their echo while client 1 held its connection; the others did not.`);
  }

  const queued = f.waitedIn['accept-queue'];
  if (queued.length > 0) {
    const waits = queued.flatMap((c) => c.waits.filter((w) => w.where === 'accept-queue').map((w) => w.toMs - w.fromMs));
    const quick = queued.filter((c) => c.connectMs !== undefined && c.connectMs - c.startMs < 500);
    sentences.push(
      `${capital(clientList(queued))} ` +
        (quick.length === queued.length ? `completed the handshake at once (in ${range(quick.map((c) => c.connectMs! - c.startMs))}) and sent their line, then ` : '') +
        `waited ${range(waits)} in the kernel's accept queue: the server side of each connection was ESTABLISHED but had no socket file yet (accept() had not been called for it). ` +
        `The listening socket's Recv-Q was sampled at up to ${f.maxDepthWhileHeld} while client 1 held (${f.samplesWhileHeld} samples, one every ${report.settings.sampleMs} ms).`,
    );
  } else {
    sentences.push(
      `The accept queue never held more than ${f.maxDepth} connection${f.maxDepth === 1 ? '' : 's'} in ${run.samples.length} samples: ` +
        `the server took every connection off it as soon as it arrived, so no client waited there.`,
    );
  }

  const retried = f.waitedIn['syn-retransmit'];
  if (retried.length > 0) {
    sentences.push(
      `${capital(clientList(retried))} could not even complete the handshake: the accept queue was full, the kernel dropped their SYN, ` +
        `and they connected only after ${retried.map((c) => seconds((c.connectMs ?? c.startMs) - c.startMs)).join(', ')} (their kernel's SYN retransmits, explained with the backlog sweep).`,
    );
  }
  const halfOpen = f.waitedIn['final-ack-dropped'];
  if (halfOpen.length > 0) {
    sentences.push(
      `${capital(clientList(halfOpen))} looked connected (the client's connect() had returned) while the server still showed only a SYN_RECV request socket: the final ACK had been dropped.`,
    );
  }

  const inServer = f.waitedIn['user-space'];
  if (inServer.length > 0) {
    const waits = inServer.flatMap((c) => c.waits.filter((w) => w.where === 'user-space').map((w) => w.toMs - w.fromMs));
    sentences.push(
      `${capital(clientList(inServer))} waited ${range(waits)} in user space: ${userSpaceGloss(run, report)}.`,
    );
  }
  if (f.maxProcesses > 1) {
    sentences.push(`The lab's process tree grew to ${f.maxProcesses} processes while the clients were connected.`);
  }
  if (f.waitedNowhere.length > 0) {
    sentences.push(
      `${capital(clientList(f.waitedNowhere))} waited nowhere: each echo came within ${report.settings.userSpaceWaitMs} ms of the handshake ` +
        `(${range(f.waitedNowhere.filter((c) => c.connectMs !== undefined && c.firstEchoMs !== undefined).map((c) => c.firstEchoMs! - c.connectMs!))}).`,
    );
  }
  if (f.failed.length > 0) {
    sentences.push(`Not served: ${f.failed.map((c) => `client ${c.client} (${c.outcome}${c.error ? `: ${c.error}` : ''})`).join(', ')}.`);
  }
  sentences.push(
    `ListenOverflows rose by ${f.listenOverflows} and ListenDrops by ${f.listenDrops} during the run` +
      (f.listenOverflows > 0
        ? ` (each SYN or final ACK dropped at a full queue adds one${report.network === 'own network namespace' ? '' : '; the counters are machine-wide'}).`
        : '.'),
  );
  if (run.strangerSockets > 0) {
    sentences.push(`${run.strangerSockets} other socket(s) connected to the port during the run and were left out.`);
  }
  return sentences.join(' ');
}

/** The sweep in a few sentences, from the measured runs. */
export function explainSweep(runs: readonly RunResult[], kernel: KernelSettings): string[] {
  const paragraphs: string[] = [];
  for (const run of runs) {
    const f = runFacts(run);
    const parts = [`**Backlog ${run.backlogAsked}** (the kernel's effective backlog: ${run.effectiveBacklog}${run.effectiveBacklogSource === 'computed' ? ', computed as min(backlog, somaxconn) because ss is not installed' : ''}):`];
    parts.push(
      `the accept queue held at most ${f.maxDepth}` +
        (f.maxDepth === run.effectiveBacklog + 1 ? `, backlog + 1: Linux counts the queue as full only when it holds more than the backlog.` : '.'),
    );
    const retried = f.waitedIn['syn-retransmit'];
    if (retried.length === 0) {
      parts.push(`All ${f.others.length} waiting clients fitted; no SYN was dropped (ListenOverflows +${f.listenOverflows}).`);
    } else {
      const matched = retried.filter((c) => c.synRetransmitsS !== undefined);
      const resends = matched.reduce((n, c) => n + c.synRetransmitsS!.length, 0);
      parts.push(
        `${capital(clientList(retried))} found it full. Their handshakes took ${retried.map((c) => seconds((c.connectMs ?? c.startMs) - c.startMs)).join(', ')}` +
          (matched.length > 0 ? `: ${byResends(matched)}.` : '.') +
          ` ListenOverflows rose by ${f.listenOverflows}` +
          (matched.length === retried.length
            ? resends === f.listenOverflows
              ? `: exactly these clients' dropped SYNs, one for each resend.`
              : `; ${resends} of that are these clients' dropped SYNs, one for each resend.`
            : '.'),
      );
      const firstServed = Math.min(...retried.map((c) => c.firstEchoMs ?? Infinity));
      const holdTo = f.holdToMs;
      if (holdTo !== undefined && Number.isFinite(firstServed)) {
        parts.push(
          `Room opened at ${seconds(holdTo)}, when client 1 closed and the server accepted the queued clients, but a dropped client only notices at its next retransmit: the first was served at ${seconds(firstServed)}.`,
        );
      }
    }
    paragraphs.push(parts.join(' '));
  }
  const schedule = synRetransmitSchedule(kernel);
  paragraphs.push(
    `Why whole seconds: a client whose SYN gets no answer resends it when its retransmission timer fires. The timer starts at 1 s; ` +
      (kernel.synLinearTimeouts !== undefined
        ? `on this kernel it stays at 1 s for the first ${kernel.synLinearTimeouts + 1} timeouts (\`net.ipv4.tcp_syn_linear_timeouts = ${kernel.synLinearTimeouts}\`) and doubles after that, `
        : 'it doubles after every timeout, ') +
      `so SYNs go out at ${schedule.join(', ')} s after the first (\`net.ipv4.tcp_syn_retries = ${kernel.synRetries ?? '?'}\`), then connect() fails with ETIMEDOUT. ` +
      `Kernels before 6.7 double from the start: 1, 3, 7, 15 s.`,
  );
  const halfOpen = runs.flatMap((r) => runFacts(r).waitedIn['final-ack-dropped']);
  paragraphs.push(
    'Two drops are possible, and both count in ListenOverflows. If the queue is full when the SYN arrives, the server drops it and the client stays in SYN-SENT ' +
      '(`ss -tn state syn-sent` shows it). If the queue fills between the SYN-ACK and the client\'s final ACK, the server drops the ACK instead: ' +
      'the client\'s connect() has already returned, so it looks connected and may even send its line, but the server holds only a SYN_RECV request socket ' +
      `and retransmits its SYN-ACK (\`net.ipv4.tcp_synack_retries = ${kernel.synackRetries ?? '?'}\`) until the queue has room; ` +
      `with \`net.ipv4.tcp_abort_on_overflow = ${kernel.abortOnOverflow ?? '?'}\` ${kernel.abortOnOverflow === 1 ? 'it would reset the connection instead' : 'it does not reset it'}. ` +
      (halfOpen.length > 0
        ? `This run caught it for ${clientList(halfOpen)}.`
        : 'No client in this run was caught that way (the sampler looks for a client that had connected while the server side was still SYN_RECV): with clients 100 ms apart the queue never filled between a SYN and its ACK.'),
  );
  return paragraphs;
}

/** "clients 4–6 connected at their 3rd resend (SYN resent 1, 2, 3 s after the first)", grouped by schedule. */
export function byResends(clients: readonly ClientRecord[]): string {
  const groups = new Map<string, ClientRecord[]>();
  for (const c of clients) {
    const key = c.synRetransmitsS!.join(', ');
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups]
    .map(([at, group]) => {
      const n = group[0]!.synRetransmitsS!.length;
      return `${clientList(group)} connected at ${group.length > 1 ? 'their' : 'its'} ${ordinal(n)} resend (SYN resent ${at} s after the first)`;
    })
    .join('; ');
}

const ordinal = (n: number) => `${n}${n % 10 === 1 && n !== 11 ? 'st' : n % 10 === 2 && n !== 12 ? 'nd' : n % 10 === 3 && n !== 13 ? 'rd' : 'th'}`;

/**
 * What a wait in user space consists of in the run's model (the registry's acceptedWait, as the
 * results file recorded it), said only when such a wait was measured. The experiment sees that
 * the server held the connection and answered late, not why.
 */
function userSpaceGloss(run: RunResult, report: BacklogReport): string {
  return report.labs.find((lab) => lab.id === run.lab)?.acceptedWait ?? 'the server held the connection but had not answered yet';
}
