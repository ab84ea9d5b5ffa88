/**
 * The health-probe table: one lab, four states, both probes (shared/probe.ts) in each.
 *
 *   idle:      nobody connected;
 *   busy:      clients ping-ponging echoes the whole time (the serial lab: serving one of them);
 *   blocked:   a second start with --work-us, one client's chunk read and its work running;
 *   draining:  SIGTERM sent while a client holds its connection open, so the drain waits for it.
 *
 * What the table teaches: the TCP probe is green wherever the kernel completes the handshake
 * (into the accept queue, whether or not the loop ever accepts); the echo probe is green only
 * where the model answered within the deadline.
 */

import type { LabCase } from '../../test/helpers/labs.js';
import { connectionQueues } from '../../harness/sockets.js';
import { probe, type ProbeKind, type ProbeResult } from '../../shared/probe.js';
import { EchoLoop, until } from './pingpong.js';

export type ProbeState = 'idle' | 'busy' | 'blocked' | 'draining';
export const PROBE_STATES: readonly ProbeState[] = ['idle', 'busy', 'blocked', 'draining'];
export const PROBE_KINDS_SHOWN: readonly ProbeKind[] = ['tcp', 'echo'];

export type ProbeCell = Pick<ProbeResult, 'ok' | 'ms' | 'detail'>;
export interface ProbeRow {
  readonly lab: string;
  readonly states: Record<ProbeState, Record<'tcp' | 'echo', ProbeCell>>;
}

export interface ProbeSettings {
  readonly deadlineMs: number;
  /** --work-us of the blocked state: longer than the deadline, so a blocked loop cannot answer in time. */
  readonly workUs: number;
}

async function both(host: string, port: number, deadlineMs: number): Promise<Record<'tcp' | 'echo', ProbeCell>> {
  const [tcp, echo] = await Promise.all(PROBE_KINDS_SHOWN.map((kind) => probe(kind, { host, port, deadlineMs })));
  const cell = ({ ok, ms, detail }: ProbeResult): ProbeCell => ({ ok, ms: Math.round(ms * 10) / 10, detail });
  return { tcp: cell(tcp!), echo: cell(echo!) };
}

export async function probeLab(labCase: Pick<LabCase, 'start' | 'title'>, settings: ProbeSettings): Promise<ProbeRow> {
  const { deadlineMs } = settings;
  const lab = await labCase.start(['--quiet']);
  const idle = await both(lab.host, lab.port, deadlineMs);
  const load = await EchoLoop.start(lab.port, 4);
  const busy = await both(lab.host, lab.port, deadlineMs);
  await load.stop();
  // Draining: a client holds its connection (an echo stream ends when the client says so).
  const holder = await EchoLoop.start(lab.port, 1);
  holder.pause();
  lab.child.kill('SIGTERM');
  await lab.waitForLine(/no longer accepting/, 20_000);
  const draining = await both(lab.host, lab.port, deadlineMs);
  await holder.stop();
  await lab.stop('SIGTERM');

  const worker = await labCase.start(['--quiet', '--work-us', String(settings.workUs)]);
  // Its first message is the chunk the work runs for; read means the work has begun (every lab
  // reads a chunk and works on it in one go).
  const stuck = await EchoLoop.start(worker.port, 1);
  await until(() => connectionQueues(worker.port, stuck.localPorts[0]!)?.serverUnread === 0, 20_000, 'the lab to read the chunk');
  const blocked = await both(worker.host, worker.port, deadlineMs);
  await stuck.stop();
  await worker.stop('SIGTERM');
  return { lab: labCase.title, states: { idle, busy, blocked, draining } };
}
