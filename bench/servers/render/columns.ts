/**
 * What each scenario's section shows: the method in two sentences, the table's columns with the
 * explanation the report prints under every table, and which figures get a chart. The JSON keeps
 * more figures than these columns (p90, max, memory under load, short reads...): detail the
 * Summary and findings do not rest on, left out to keep the report readable in minutes.
 */

import type { MetricName, MetricOf, ScenarioId } from '../results.js';
import type { Unit } from '../../kit/format.js';

export interface Column<M extends MetricName = MetricName> {
  readonly header: string;
  readonly explain: string;
  /** One of the scenario's declared metrics (results.ts): a misspelt one does not compile. */
  readonly metric: M;
  readonly unit: Unit;
  /** Which way is better, for marking the best value; none for descriptive columns. */
  readonly better?: 'higher' | 'lower';
  /** 'sum' totals the runs (an error in any run matters); otherwise the median with its range. */
  readonly over?: 'median' | 'sum';
  /** Further metrics shown in the same cell, separated by " / ". */
  readonly with?: readonly M[];
}

/** A column of any scenario, as the table renderer takes it. */
export type AnyColumn = Column;

export interface ChartSpec<M extends MetricName = MetricName> {
  /** Picks the cell: the last cell whose params match all of these. */
  readonly cell: (params: Readonly<Record<string, number>>, settings: Readonly<Record<string, unknown>>) => boolean;
  readonly metric: M;
  readonly title: string;
  readonly axis: string;
}

export interface SectionSpec<M extends MetricName = MetricName> {
  readonly heading: string;
  readonly method: string;
  readonly columns: readonly Column<M>[];
  readonly charts: readonly ChartSpec<M>[];
  /** The method of older results files, measured another way: those whose runs lack `metric`. */
  readonly earlier?: { readonly metric: M; readonly method: string };
}

const latency = (what: string): Column<'p50Us' | 'p99Us'>[] => [
  { header: 'p50 µs', metric: 'p50Us', unit: 'us', better: 'lower', explain: `${what} latency percentiles in microseconds: p50 is the median, p99 the value 99% of ${what === 'Round-trip' ? 'round trips' : 'requests'} beat, max the slowest seen` },
  { header: 'p99 µs', metric: 'p99Us', unit: 'us', better: 'lower', explain: '' },
];

const cost = (unit: string): Column<'cpuUsPerUnit' | 'loadGenCorePct'>[] => [
  {
    header: `server CPU µs/${unit}`,
    metric: 'cpuUsPerUnit',
    unit: 'cpuUs',
    better: 'lower',
    explain: `CPU time (user + system) of the server's whole process tree, children included, per ${unit}: the efficiency figure, still fair when the load generator set the pace`,
  },
  {
    header: 'load gen core',
    metric: 'loadGenCorePct',
    unit: 'pct',
    explain: "the load generator's own CPU as a share of one core; ⚠ at 90% or more: it was saturated, so the throughput is the client's ceiling, not the server's",
  },
];

const fairness = (what: string): Column<'fewest' | 'most'> => ({
  header: 'fewest / most per conn',
  metric: 'fewest',
  with: ['most'],
  unit: 'count',
  explain: `${what} of the least and of the most served connection in the window: close together when the server is fair, 0 / everything when one connection has it to itself`,
});

const httpErrors: Column<'errors' | 'timeouts' | 'non2xx' | 'mismatches'> = {
  header: 'errors / timeouts / non-2xx / mismatches',
  metric: 'errors',
  with: ['timeouts', 'non2xx', 'mismatches'],
  unit: 'count',
  over: 'sum',
  explain: "autocannon's socket errors (a refused or reset connection is one each time autocannon reconnects), requests unanswered for 30 s, responses other than 2xx, and 2xx responses whose body was not the request's body; totals over all runs",
};

export function sectionSpec(id: ScenarioId): SectionSpec {
  return SECTIONS[id] as SectionSpec;
}

/** Each scenario's section, its columns checked against that scenario's own metrics. */
const SECTIONS: { readonly [S in ScenarioId]: SectionSpec<MetricOf<S>> } = {
  echo: {
        heading: 'Raw echo, closed loop',
        method:
          'Each connection sends a message, waits for every byte of it to come back, checks each byte against what it sent ' +
          '(a per-connection sequence number and pattern), then sends the next. The load generator is our C client ' +
          '(bench/load/c-echo-client.c: one epoll loop, cheaper per round trip than every Node server), one run per repeat, each with its own warm-up; ' +
          'latency in an HDR-style histogram.',
        columns: [
          { header: 'round trips/s', metric: 'roundTripsPerSec', unit: 'rate', better: 'higher', explain: 'round trips completed per second in the measured window, all connections together' },
          ...latency('Round-trip'),
          { header: 'errors', metric: 'errors', unit: 'count', over: 'sum', explain: 'corrupted, missing or extra bytes and failed connections, totalled over all runs (every echoed byte is checked)' },
          fairness('round trips'),
          ...cost('round trip'),
        ],
        charts: [
          { cell: (p, s) => p.connections === max(s.connections) && p.messageBytes === min(s.sizes), metric: 'roundTripsPerSec', title: 'Round trips/s', axis: 'round trips/s' },
          { cell: (p, s) => p.connections === max(s.connections) && p.messageBytes === min(s.sizes), metric: 'cpuUsPerUnit', title: 'Server CPU µs per round trip', axis: 'CPU µs' },
          { cell: (p, s) => p.connections === max(s.connections) && p.messageBytes === max(s.sizes), metric: 'roundTripsPerSec', title: 'Round trips/s', axis: 'round trips/s' },
        ],
  },
  idle: {
        heading: 'Idle connections beside busy ones (C10K)',
        method:
          'For each level, from 0 up, the C load generator opens N idle connections (500 handshakes in flight, spread over loopback source ' +
          'addresses 127.0.0.2 and up so ephemeral ports never run out) and gets one echo on each, so the server has accepted every one; ' +
          'then it ping-pongs 64 B on the busy connection, one run per repeat. The figures are the server\'s CPU per busy round trip (what ' +
          'the idle descriptors cost each wake-up of the loop) and what each idle connection costs the server and the kernel. ' +
          'A server stops at the first level it cannot reach, and the row says why.',
        columns: [
          { header: 'server CPU µs/round trip', metric: 'cpuUsPerUnit', unit: 'cpuUs', better: 'lower', explain: "CPU time of the server's process tree per busy round trip: the C10K figure" },
          { header: 'round trips/s', metric: 'roundTripsPerSec', unit: 'rate', better: 'higher', explain: 'busy round trips per second, all busy connections together' },
          { header: 'p50 µs', metric: 'p50Us', unit: 'us', better: 'lower', explain: 'busy round-trip latency percentiles in microseconds' },
          { header: 'p99 µs', metric: 'p99Us', unit: 'us', better: 'lower', explain: '' },
          { header: 'errors', metric: 'errors', unit: 'count', over: 'sum', explain: 'corrupted, missing or extra bytes and failed busy connections, totalled over all runs' },
          fairness('round trips'),
          { header: 'open s', metric: 'openS', unit: 's', explain: 'seconds to open the N idle connections and get one echo on each' },
          { header: 'server RSS', metric: 'serverRssBytes', unit: 'bytes', explain: "resident memory of the server's tree while it holds the N idle connections" },
          {
            header: 'RSS / idle conn',
            metric: 'rssPerConnection',
            unit: 'bytes',
            better: 'lower',
            explain: "growth of the server tree's RSS from its start to holding N, divided by N: what the server keeps of its own per connection",
          },
          {
            header: 'kernel / idle conn',
            metric: 'kernelPerConnection',
            unit: 'bytes',
            explain:
              "growth of the kernel's socket memory while holding N, divided by N, for both ends of each loopback connection (a server's own end is about half): " +
              "the slabs of /proc/slabinfo (TCP, sock_inode_cache, filp, dentry, eventpoll_epi) and TCP's buffer pages of /proc/net/sockstat, machine-wide, " +
              "so other programs' sockets in that time are noise in it; – where slabinfo is unreadable",
          },
          { header: 'load gen core', metric: 'loadGenCorePct', unit: 'pct', explain: "the C load generator's CPU as a share of one core; ⚠ at 90% or more" },
        ],
        earlier: {
          metric: 'openS',
          method:
            'The harness opens N idle connections and probes each once (so the server has accepted every one), then the C load generator ' +
            'ping-pongs 64 B on a few busy connections, one run per repeat. The figure is the server\'s CPU per busy round trip: what ' +
            'the idle descriptors cost each wake-up of the loop.',
        },
        charts: [
          { cell: (p) => p.idle === 0, metric: 'cpuUsPerUnit', title: 'Server CPU µs per busy round trip', axis: 'CPU µs' },
          { cell: () => true, metric: 'cpuUsPerUnit', title: 'Server CPU µs per busy round trip', axis: 'CPU µs' },
        ],
  },
  http: {
        heading: 'HTTP echo through autocannon',
        method:
          "autocannon's programmatic API POSTs a small body that the server echoes, with and without pipelining; every response " +
          'body is compared with the request body. Latency from autocannon\'s per-response timings, in µs.',
        columns: [
          { header: 'req/s', metric: 'requestsPerSec', unit: 'rate', better: 'higher', explain: 'responses per second in the measured window' },
          ...latency('Request'),
          httpErrors,
          fairness('responses'),
          ...cost('request'),
        ],
        charts: [
          { cell: (p, s) => p.connections === max(s.httpConnections) && p.pipelining === 1, metric: 'requestsPerSec', title: 'Requests/s', axis: 'req/s' },
          { cell: (p, s) => p.connections === max(s.httpConnections) && p.pipelining === s.pipelining, metric: 'requestsPerSec', title: 'Requests/s', axis: 'req/s' },
        ],
  },
  cpu: {
        heading: 'CPU-bound HTTP',
        method:
          'The same HTTP echo, each request first spinning the CPU for `--work-us` microseconds inside the server. ' +
          'Here the server may use every core; models that spread the work over cores should pull ahead of one event loop.',
        columns: [
          { header: 'req/s', metric: 'requestsPerSec', unit: 'rate', better: 'higher', explain: 'responses per second in the measured window' },
          { header: 'server cores', metric: 'serverCores', unit: 'cores', better: 'higher', explain: 'cores the server tree kept busy on average: how much of the machine the model could use' },
          { header: 'p50 µs', metric: 'p50Us', unit: 'us', better: 'lower', explain: 'request latency percentiles in microseconds' },
          { header: 'p99 µs', metric: 'p99Us', unit: 'us', better: 'lower', explain: '' },
          httpErrors,
          fairness('responses'),
          ...cost('request'),
        ],
        charts: [{ cell: () => true, metric: 'requestsPerSec', title: 'Requests/s with CPU work', axis: 'req/s' }],
  },
  churn: {
        heading: 'Connection churn',
        method:
          'Several clients each connect, send one 64-byte message, read and check its echo, half-close, and wait for the ' +
          "server's close; then start over. A cycle counts when it ends inside the window.",
        columns: [
          { header: 'connections/s', metric: 'connectionsPerSec', unit: 'rate', better: 'higher', explain: 'complete connect-echo-close cycles per second' },
          { header: 'first echo p50 µs', metric: 'firstEchoP50Us', unit: 'us', better: 'lower', explain: 'connect-to-first-echo latency percentiles in µs: from starting the connect to reading the last byte of the first echo' },
          { header: 'p99 µs', metric: 'firstEchoP99Us', unit: 'us', better: 'lower', explain: '' },
          { header: 'errors', metric: 'errors', unit: 'count', over: 'sum', explain: 'failed connects, resets, wrong or short echoes and cycles over 10 s, totalled over all runs' },
          ...cost('connection'),
        ],
        charts: [{ cell: () => true, metric: 'connectionsPerSec', title: 'Connections/s (connect, echo, close)', axis: 'connections/s' }],
  },
  capacity: {
        heading: 'Capacity: idle connections held',
        method:
          'A fresh server per level and run: weigh it idle, open N connections (200 handshakes at a time), send 8 bytes on every ' +
          'one and wait for all the echoes, weigh it again. A level is held only if every connection echoed.',
        columns: [
          { header: 'echoed', metric: 'echoed', unit: 'count', better: 'higher', explain: 'connections whose probe came back whole: the number really held' },
          { header: 'connected', metric: 'connected', unit: 'count', explain: 'connections the kernel completed (a handshake can finish in the accept queue before the server accepts it)' },
          { header: 'in accept queue', metric: 'inAcceptQueue', unit: 'count', explain: 'connections still waiting in the listening socket\'s accept queue after the probe (Recv-Q of `ss -ltn`): never accepted by the server' },
          {
            header: 'memory / connection',
            metric: 'bytesPerConnection',
            unit: 'bytes',
            better: 'lower',
            explain:
              "growth of the server tree's memory from idle to holding N connections, divided by N (PSS: pages shared between processes counted once). " +
              "Socket buffers are kernel memory, in no process's figure: a server that keeps nothing of its own per connection shows about 0, " +
              'a few bytes either side of it as pages come and go',
          },
          { header: 'tree PSS', metric: 'pssBytes', unit: 'bytes', explain: 'proportional set size of the whole tree while holding N: each shared page divided among the processes sharing it' },
          { header: 'processes', metric: 'processes', unit: 'count', explain: 'processes in the server tree while holding N' },
        ],
        charts: [],
  },
};

function max(value: unknown): number {
  return Math.max(...(value as number[]));
}
function min(value: unknown): number {
  return Math.min(...(value as number[]));
}
