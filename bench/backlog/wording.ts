/** Small formatting helpers shared by the report's tables, charts and sentences. */

import type { ClientRecord, Wait, WaitPlace } from './results.js';

/** 1234.5 -> "1.23 s" */
export const seconds = (ms: number | undefined): string => (ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`);

/** A span of moments: "3.003 s" or "3.003–3.006 s" (ms precision: they are often close together). */
export function moments(values: readonly number[]): string {
  if (values.length === 0) return '–';
  const lo = (Math.min(...values) / 1000).toFixed(3);
  const hi = (Math.max(...values) / 1000).toFixed(3);
  return lo === hi ? `${lo} s` : `${lo}–${hi} s`;
}

/** 0.42 -> "0.4 ms", 12.3 -> "12 ms", 2345 -> "2.35 s" */
export function duration(ms: number | undefined): string {
  if (ms === undefined) return '–';
  if (ms >= 1000) return seconds(ms);
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** A range of durations: "0.4–1.2 ms", or one value when they agree. */
export function range(values: readonly number[]): string {
  if (values.length === 0) return '–';
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return duration(lo) === duration(hi) ? duration(lo) : `${duration(lo)}–${duration(hi)}`;
}

/** [2,3,4,6] -> "clients 2–4 and 6"; [5] -> "client 5". */
export function clientList(clients: readonly ClientRecord[] | readonly number[]): string {
  const ns = clients.map((c) => (typeof c === 'number' ? c : c.client)).sort((a, b) => a - b);
  if (ns.length === 0) return 'no client';
  const runs: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    if (j - i >= 2) runs.push(`${ns[i]}–${ns[j]}`);
    else for (let k = i; k <= j; k++) runs.push(`${ns[k]}`);
    i = j + 1;
  }
  const joined = runs.length > 1 ? `${runs.slice(0, -1).join(', ')} and ${runs.at(-1)}` : runs[0]!;
  return `${ns.length === 1 ? 'client' : 'clients'} ${joined}`;
}

export const PLACE_NAMES: Record<WaitPlace, string> = {
  'syn-retransmit': 'SYN queue: SYN dropped, retransmitted',
  'final-ack-dropped': 'SYN queue: final ACK dropped',
  'accept-queue': 'kernel accept queue',
  'user-space': 'user space (accepted, not yet answered)',
  unobserved: 'not caught by a sample',
};

export function describeWait(wait: Wait, client: ClientRecord): string {
  const base = `${PLACE_NAMES[wait.where]} ${duration(wait.toMs - wait.fromMs)}`;
  if (wait.where === 'syn-retransmit' && client.synRetransmitsS) {
    return `${base} (SYN resent at ${client.synRetransmitsS.join(', ')} s)`;
  }
  return base;
}

export function describeWaits(client: ClientRecord): string {
  if (client.outcome !== 'served' && client.waits.length === 0) return '–';
  return client.waits.length === 0 ? 'nowhere' : client.waits.map((w) => describeWait(w, client)).join(' → ');
}
