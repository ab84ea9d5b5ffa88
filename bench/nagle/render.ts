/**
 * Renders the Nagle report from its JSON alone: a Summary of the split-write round trips (the
 * 40 ms stall and what removes it), the small-write and split-write tables, and what the numbers
 * say about Nagle's algorithm, delayed ACKs and the ways to batch without the stall. Every figure
 * in the prose is taken from the results; the mechanism is fixed text.
 */

import { formatBytes } from '../../shared/log.js';
import { barChart } from '../kit/chart.js';
import type { Page } from '../kit/experiment.js';
import { compare, type Figure } from '../kit/findings.js';
import { ms, thousands } from '../kit/format.js';
import type { ReportFile } from '../kit/report-file.js';
import { median, nearestRank } from '../kit/stats.js';
import { once, type Table } from '../kit/table.js';
import type { RequestPattern, SmallWritesResult, SplitWritesResult } from './measure.js';

export const NAGLE_SCHEMA = 1;
export interface NagleReport extends ReportFile<'nagle', typeof NAGLE_SCHEMA> {
  readonly results: NagleResults;
}

/** One server configuration of the split-write matrix. */
export interface SplitWritesServer {
  /** TCP_NODELAY on the server's sockets (every lab's default). */
  readonly serverNoDelay: boolean;
  /** The server writes each HTTP reply as a head and a body: the experiment switch `--split-replies`. */
  readonly splitReplies: boolean;
  readonly results: readonly SplitWritesResult[];
}

export interface NagleResults {
  /** The lab the measurements ran against, and its model. */
  readonly server: { readonly id: string; readonly label: string; readonly model: string };
  readonly smallWrites: readonly SmallWritesResult[];
  readonly splitWrites: readonly SplitWritesServer[];
  readonly rounds: number;
}

const yes = (b: boolean) => (b ? 'on' : 'off');

/** Round trips that took longer than this count as stalled: far above loopback's tens of µs, below a delayed ACK. */
const STALL_MS = 10;

function smallWritesTable(results: readonly SmallWritesResult[]): string[] {
  const lines = [
    '| write size | TCP_NODELAY | writes | MB/s | segments sent | bytes per segment | client CPU ms | server CPU ms |',
    '|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.writeSize} B | ${yes(r.noDelay)} | ${thousands(r.writes)} | ${(r.bytes / r.seconds / 1e6).toFixed(2)} | ` +
        `${thousands(r.segmentsOut)} | ${(r.bytes / r.segmentsOut).toFixed(0)} | ${r.clientCpuMs.toFixed(0)} | ${Number.isFinite(r.serverCpuMs) ? r.serverCpuMs.toFixed(0) : '–'} |`,
    );
  }
  return lines;
}

function splitWritesTable(servers: readonly SplitWritesServer[], rounds: number): string[] {
  const lines = [
    `| server TCP_NODELAY | server reply | client TCP_NODELAY | request written as | median ms | p90 ms | max ms | stalled (> ${STALL_MS} ms) of ${rounds} | first 4 round trips, ms |`,
    '|---|---|---|---|---:|---:|---:|---:|---|',
  ];
  for (const server of servers) {
    for (const r of server.results) {
      const stalled = r.roundTripMs.filter((t) => t > STALL_MS).length;
      lines.push(
        `| ${yes(server.serverNoDelay)} | ${server.splitReplies ? 'head, then body' : 'one write'} | ${yes(r.clientNoDelay)} | ${r.pattern} | ` +
          `${ms(median(r.roundTripMs))} | ${ms(nearestRank(r.roundTripMs, 0.9))} | ${ms(Math.max(...r.roundTripMs))} | ${stalled} | ` +
          `${r.roundTripMs.slice(0, 4).map(ms).join(', ')} |`,
      );
    }
  }
  return lines;
}

function find(results: NagleResults, serverNoDelay: boolean, splitReplies: boolean, clientNoDelay: boolean, pattern: RequestPattern): SplitWritesResult | undefined {
  return results.splitWrites
    .find((s) => s.serverNoDelay === serverNoDelay && s.splitReplies === splitReplies)
    ?.results.find((r) => r.clientNoDelay === clientNoDelay && r.pattern === pattern);
}

/** What the first, unstalled round trips of a stalling row show, if any were unstalled. */
function quickAck(roundTripMs: readonly number[]): string {
  const fast = roundTripMs.findIndex((t) => t > STALL_MS);
  const leading = fast < 0 ? roundTripMs.length : fast;
  if (leading === 0 || leading === roundTripMs.length) return '';
  const times = roundTripMs.slice(0, leading).map(ms).join(', ');
  return (
    `The first ${leading === 1 ? 'round trip was' : `${leading} round trips were`} fast (${times} ms): a new connection starts in quick-ACK mode, ` +
    'acknowledging every segment at once, and leaves it once the exchange looks interactive.'
  );
}

/** Sentences from the numbers; each said only when its rows were measured. */
function explanation(results: NagleResults): string[] {
  const out: string[] = [];
  const one = results.smallWrites.find((r) => r.writeSize === 1 && !r.noDelay);
  const oneNoDelay = results.smallWrites.find((r) => r.writeSize === 1 && r.noDelay);
  if (one && oneNoDelay) {
    const fewer = one.segmentsOut < oneNoDelay.segmentsOut;
    out.push(
      `**Small writes.** ${formatBytes(one.bytes)} in 1-byte writes left the client in ${thousands(one.segmentsOut)} data segments with Nagle's algorithm on ` +
        `(${(one.bytes / one.segmentsOut).toFixed(0)} B each on average) and in ${thousands(oneNoDelay.segmentsOut)} with TCP_NODELAY ` +
        `(${(oneNoDelay.bytes / oneNoDelay.segmentsOut).toFixed(0)} B each). ` +
        (fewer
          ? 'Nagle holds a small write back while an earlier segment is unacknowledged and sends what has gathered when the ACK comes. '
          : 'Here Nagle did not send fewer segments: on loopback the ACK comes back within microseconds, so little gathers while it is awaited. ') +
        'TCP_NODELAY sends at once, yet not one segment per write either: on Linux a write to a socket whose earlier segments still wait below it ' +
        'in the stack is merged into them (autocorking, `net.ipv4.tcp_autocorking`). ' +
        `What both runs share is the cost of ${thousands(one.writes)} write calls: ${one.clientCpuMs.toFixed(0)} and ${oneNoDelay.clientCpuMs.toFixed(0)} ms of client CPU, ` +
        `against ${(results.smallWrites.find((r) => r.writeSize === 1024 && !r.noDelay)?.clientCpuMs ?? Number.NaN).toFixed(0)} ms in 1,024-byte writes. ` +
        'Batching in the program (one write of many bytes) is what makes small messages cheap; the socket option only decides when the bytes leave.',
    );
  }
  const stall = find(results, true, false, false, 'two writes');
  const fixed = find(results, true, false, true, 'two writes');
  if (stall && fixed) {
    out.push(
      `**Split writes.** A request written as a head and then a body, with Nagle on at the client, took ${ms(median(stall.roundTripMs))} ms per round trip (median of ${stall.roundTripMs.length}); ` +
        `with TCP_NODELAY, ${ms(median(fixed.roundTripMs))} ms. The head goes out at once (nothing is unacknowledged); the body is small, so Nagle holds it until the head is acknowledged. ` +
        'The server has nothing to send back yet (it waits for the whole request), so it does not acknowledge at once: it delays the ACK, hoping to put it on a reply, ' +
        `for up to the delayed-ACK timeout (the kernel's ato, ${stall.clientAtoMs !== undefined ? `${ms(stall.clientAtoMs)} ms on the client's socket at the end of the run; Linux's minimum is 40 ms` : 'at least 40 ms on Linux'}). ` +
        quickAck(stall.roundTripMs),
    );
  }
  const more = find(results, true, false, false, 'two writes, MSG_MORE');
  const cork = find(results, true, false, false, 'two writes, TCP_CORK');
  if (more && cork) {
    out.push(
      `**Batching without the stall.** With Nagle still on, MSG_MORE on the first write (${ms(median(more.roundTripMs))} ms) and TCP_CORK around both writes (${ms(median(cork.roundTripMs))} ms) ` +
        'tell the kernel that more is coming: it holds the head, sends head and body in one segment, and nothing waits for an ACK.',
    );
  }
  const serverStall = find(results, false, true, true, 'one write');
  const serverFixed = find(results, true, true, true, 'one write');
  if (serverStall && serverFixed) {
    out.push(
      `**On the server's side.** The same stall happens in the other direction: a server with Nagle on (\`--no-nodelay\`) that writes its reply in two parts (\`--split-replies\`) took ` +
        `${ms(median(serverStall.roundTripMs))} ms per round trip against ${ms(median(serverFixed.roundTripMs))} ms with TCP_NODELAY, whatever the client did. ` +
        'This is why every lab sets TCP_NODELAY on the sockets it accepts.',
    );
  }
  return out;
}

/** A split-write row in words: which side splits, and Nagle on that side. */
function caseName(server: SplitWritesServer, r: SplitWritesResult): string {
  if (server.splitReplies) return `reply in two writes, server ${server.serverNoDelay ? 'TCP_NODELAY' : 'Nagle on'}${r.clientNoDelay ? '' : ', client Nagle on'}`;
  return `request as ${r.pattern}, client ${r.clientNoDelay ? 'TCP_NODELAY' : 'Nagle on'}`;
}

/** Every split-write row, named, with its round trips. */
function splitRows(results: NagleResults): { name: string; result: SplitWritesResult }[] {
  return results.splitWrites.flatMap((server) => server.results.map((result) => ({ name: caseName(server, result), result })));
}

function summary(results: NagleResults): Table {
  return {
    rowHeader: 'how the HTTP round trip was written',
    columns: [
      { header: 'median ms', unit: 'ms', explain: 'median of the round trips on one connection; one row is one run, so no figure is ranked' },
      { header: 'p90 ms', unit: 'ms' },
      { header: `stalled (> ${STALL_MS} ms)`, unit: 'count', explain: `round trips (of ${results.rounds}) that took longer than ${STALL_MS} ms: far above loopback's tens of µs, below a delayed ACK` },
    ],
    rows: splitRows(results).map(({ name, result }) => ({
      label: name,
      cells: [
        { summary: once(median(result.roundTripMs)) },
        { summary: once(nearestRank(result.roundTripMs, 0.9)) },
        { summary: once(result.roundTripMs.filter((t) => t > STALL_MS).length) },
      ],
    })),
  };
}

export function renderNagle(report: NagleReport): Page {
  const results = report.results;
  const rows = splitRows(results);
  const rtt = (server: boolean, split: boolean, client: boolean, pattern: RequestPattern): Figure | undefined => {
    const r = find(results, server, split, client, pattern);
    return r && { row: rows.find((x) => x.result === r)!.name, summary: once(median(r.roundTripMs)) };
  };
  const segments = (noDelay: boolean): Figure | undefined => {
    const r = results.smallWrites.find((x) => x.writeSize === 1 && x.noDelay === noDelay);
    return r && { row: `1-byte writes, ${noDelay ? 'TCP_NODELAY' : 'Nagle on'}`, summary: once(r.segmentsOut) };
  };
  const cpu = (size: number): Figure | undefined => {
    const r = results.smallWrites.find((x) => x.writeSize === size && !x.noDelay);
    return r && { row: `${size}-byte writes`, summary: once(r.clientCpuMs) };
  };
  return {
    intro:
      `Nagle's algorithm, delayed ACKs and TCP_NODELAY, measured against **${results.server.label}** (${results.server.model}) over loopback with a client that ` +
      'makes its own system calls (one `write` call per write, the socket options set directly: `bench/nagle/client.ts`).',
    summary: summary(results),
    chart: barChart('summary', 'Median HTTP round trip by how it was written (ms)', 'ms', rows.map(({ name, result }) => ({ label: name, value: median(result.roundTripMs) }))),
    findings: [
      compare('median round trip with the request in two writes', 'ms', rtt(true, false, false, 'two writes'), rtt(true, false, true, 'two writes')),
      compare('median round trip with Nagle on at the client', 'ms', rtt(true, false, false, 'two writes, MSG_MORE'), rtt(true, false, false, 'two writes')),
      compare('median round trip with the reply in two writes', 'ms', rtt(false, true, true, 'one write'), rtt(true, true, true, 'one write')),
      compare(`data segments the client sent for ${formatBytes(results.smallWrites[0]?.bytes ?? 0)}`, 'count', segments(false), segments(true)),
      compare('client CPU ms for the same bytes, Nagle on', 'ms', cpu(1), cpu(1024)),
    ],
    detail: detail(results),
  };
}

function detail(results: NagleResults): string[] {
  return [
    `## Small writes: ${formatBytes(results.smallWrites[0]?.bytes ?? 0)}, echoed back`,
    '',
    `The client sends ${formatBytes(results.smallWrites[0]?.bytes ?? 0)} in writes of one size and reads the echo as it comes, until the server closes after the client's FIN. ` +
      '"Segments sent" is the client socket\'s `tcpi_data_segs_out` (TCP_INFO): segments that carried data, its ACKs of the echo left out.',
    '',
    ...smallWritesTable(results.smallWrites),
    '',
    '## Split writes: request and reply in two parts',
    '',
    `${results.rounds} HTTP round trips on one connection per row (64-byte body); the request goes out in one write, or as the head and then the body. ` +
      'The server answers after the whole request, in one write or (the experiment switch `--split-replies`) as its head and then its body.',
    '',
    ...splitWritesTable(results.splitWrites, results.rounds),
    '',
    '## What the numbers say',
    '',
    ...explanation(results).flatMap((p) => [p, '']),
    '## See it by hand',
    '',
    '```sh',
    'make lab-04 PROTOCOL=http ARGS="--no-nodelay --split-replies"   # terminal 1: Nagle on, replies in two writes',
    "ss -ti 'sport = :8080'        # terminal 2, while a client is connected: nodelay is absent from the flags, ato: the delayed-ACK timeout",
    'nc 127.0.0.1 8080             # nc does not set TCP_NODELAY: type a request by hand, or pipe one in',
    '```',
  ];
}
