/**
 * The live view of a port, without any I/O: a sample of what /proc shows about the port goes in,
 * the next state of the view comes out, and `renderScreen` turns that state into the text on the
 * screen. `collect.ts` takes the samples and `main.ts` draws them; everything a test needs to
 * check about the screen is here, fed with samples it writes itself.
 */

/** A listening socket on the port (lab 06 with reuseport has one per worker). */
export interface ListenerRow {
  readonly local: string;
  /** Connections whose handshake is complete and that wait for accept(2): Recv-Q of `ss -ltn`. */
  readonly acceptQueue: number;
  /** The backlog the queue is capped at (Send-Q of `ss -ltn`); undefined when `ss` could not say. */
  readonly backlog: number | undefined;
  readonly inode: number;
}

/** A socket with the port at one end, from either end's point of view. */
export interface SocketRow {
  /** 'server': the port is the local end (the listener's side); 'client': the port is the remote end. */
  readonly side: 'server' | 'client';
  readonly local: string;
  readonly remote: string;
  /** The kernel's state name: ESTABLISHED, SYN_SENT, SYN_RECV, CLOSE_WAIT, TIME_WAIT... */
  readonly state: string;
  /** Bytes written and not yet acknowledged by the peer. */
  readonly sendQ: number;
  /** Bytes received and not yet read by the process. */
  readonly recvQ: number;
  /** The socket file's inode: 0 while no process holds it (a connection still in the accept queue). */
  readonly inode: number;
}

/** A process of the server: one holding a listening socket, or a descendant of one. */
export interface ProcessRow {
  readonly pid: number;
  readonly ppid: number;
  readonly command: string;
  readonly threads: number;
  /** User + system CPU time since the process started, in ms. */
  readonly cpuMs: number;
  readonly rssBytes: number;
}

export interface PortSample {
  /** When the sample was taken (a monotonic clock, ms). */
  readonly atMs: number;
  readonly host: string;
  readonly port: number;
  readonly listeners: readonly ListenerRow[];
  readonly sockets: readonly SocketRow[];
  /** TcpExt counters from /proc/net/netstat: machine-wide, so other servers' drops count too. */
  readonly counters: { readonly listenOverflows: number; readonly listenDrops: number };
  readonly processes: readonly ProcessRow[];
}

/** Where a connection is, as a learner reads it: the rows of the connections table, in order. */
export type Place = 'syn dropped' | 'half-open' | 'accept queue' | 'served' | 'closing';

const PLACE_ORDER: readonly Place[] = ['syn dropped', 'half-open', 'accept queue', 'served', 'closing'];

/** What each place means, for the legend under the table. */
const PLACE_MEANING: Record<Place, string> = {
  'syn dropped': "the client's SYN-SENT end: the queue was full, the kernel dropped its SYN",
  'half-open': 'SYN-RECV: the handshake is under way',
  'accept queue': 'handshake complete, waiting for the server to call accept()',
  served: 'accepted: a process of the server holds it',
  closing: 'after a close: FIN-WAIT, CLOSE-WAIT, LAST-ACK, TIME-WAIT',
};

/** Decides a socket's place from its state, its side and whether a process holds it. */
export function placeOf(socket: SocketRow): Place | undefined {
  if (socket.side === 'client') return socket.state === 'SYN_SENT' ? 'syn dropped' : undefined;
  if (socket.state === 'SYN_RECV') return 'half-open';
  if (socket.state === 'ESTABLISHED') return socket.inode === 0 ? 'accept queue' : 'served';
  // CLOSE_WAIT with a holder is still being served: the client half-closed, the echo is going out.
  if (socket.state === 'CLOSE_WAIT' && socket.inode !== 0) return 'served';
  return 'closing';
}

interface Tracked {
  readonly place: Place;
  /** When the view first saw the socket in this place. */
  readonly sinceMs: number;
}

/** What the view remembers between samples. */
export interface ViewState {
  readonly startedAtMs: number;
  readonly first: PortSample;
  readonly sample: PortSample;
  readonly previous: PortSample | undefined;
  readonly places: ReadonlyMap<string, Tracked>;
  /** Each connection seen in this sample, by its client's address, and whether it has closed. */
  readonly connections: ReadonlyMap<string, Life>;
  /**
   * Connections that appeared or closed since the previous sample, per second. Counted from
   * /proc/net/tcp by each connection's client address, TIME_WAIT included: a connection closed
   * with FIN leaves a TIME_WAIT socket for 60 s, so one opened and closed between two redraws is
   * still seen once, as opened and closed. Not seen: one reset (no TIME_WAIT) or, from a client
   * on another machine that closed first (its TIME_WAIT is there), one shorter than a redraw.
   */
  readonly openedPerSecond: number;
  readonly closedPerSecond: number;
  /** Processes that joined or left the server's tree lately, newest first, with when. */
  readonly events: readonly { readonly atMs: number; readonly text: string }[];
}

/** How long the view keeps showing that a process came or went. */
const EVENT_MEMORY_MS = 10_000;

const socketKey = (s: SocketRow) => `${s.side} ${s.local} ${s.remote}`;

type Life = 'open' | 'closed';

/**
 * Each connection in a sample by its client's address (the server's socket and the client's, when
 * both are on this machine, are one connection), closed once every socket of it is in TIME_WAIT.
 * A client's SYN the server never answered is not a connection.
 */
function connectionsOf(sample: PortSample): Map<string, Life> {
  const lives = new Map<string, Life>();
  for (const socket of sample.sockets) {
    if (socket.side === 'client' && socket.state === 'SYN_SENT') continue;
    const client = socket.side === 'server' ? socket.remote : socket.local;
    const life: Life = socket.state === 'TIME_WAIT' ? 'closed' : 'open';
    lives.set(client, lives.get(client) === 'open' ? 'open' : life);
  }
  return lives;
}

/** The view after one more sample. */
export function advance(state: ViewState | undefined, sample: PortSample): ViewState {
  const places = new Map<string, Tracked>();
  for (const socket of sample.sockets) {
    const place = placeOf(socket);
    if (!place) continue;
    const key = socketKey(socket);
    const before = state?.places.get(key);
    places.set(key, before && before.place === place ? before : { place, sinceMs: sample.atMs });
  }
  const connections = connectionsOf(sample);
  if (!state) {
    return { startedAtMs: sample.atMs, first: sample, sample, previous: undefined, places, connections, openedPerSecond: 0, closedPerSecond: 0, events: [] };
  }

  const before = state.connections;
  const seconds = Math.max((sample.atMs - state.sample.atMs) / 1000, 1e-3);
  const opened = [...connections.keys()].filter((client) => !before.has(client)).length;
  // Closed since: now in TIME_WAIT and not before (or new), or open before and gone without one (a reset).
  const closed =
    [...connections].filter(([client, life]) => life === 'closed' && before.get(client) !== 'closed').length +
    [...before].filter(([client, life]) => life === 'open' && !connections.has(client)).length;

  const pidsBefore = new Map(state.sample.processes.map((p) => [p.pid, p]));
  const pidsNow = new Map(sample.processes.map((p) => [p.pid, p]));
  const events = [
    ...[...pidsNow.values()].filter((p) => !pidsBefore.has(p.pid)).map((p) => ({ atMs: sample.atMs, text: `+ pid ${p.pid} (${p.command}) started` })),
    ...[...pidsBefore.values()].filter((p) => !pidsNow.has(p.pid)).map((p) => ({ atMs: sample.atMs, text: `- pid ${p.pid} (${p.command}) exited` })),
    ...state.events.filter((e) => sample.atMs - e.atMs < EVENT_MEMORY_MS),
  ];
  return {
    startedAtMs: state.startedAtMs,
    first: state.first,
    sample,
    previous: state.sample,
    places,
    connections,
    openedPerSecond: opened / seconds,
    closedPerSecond: closed / seconds,
    events,
  };
}

// --- Rendering ----------------------------------------------------------------------------------

export interface RenderOptions {
  /** Terminal width in columns; rows are cut to it. */
  readonly width: number;
  /** Most connection rows shown per place (the rest are counted). */
  readonly rowsPerPlace?: number;
}

const pad = (text: string, width: number) => (text.length >= width ? text.slice(0, width) : text + ' '.repeat(width - text.length));
const padLeft = (text: string, width: number) => (text.length >= width ? text : ' '.repeat(width - text.length) + text);

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function age(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min`;
}

/**
 * What the view watches, as the server bound it: the listening sockets' own addresses
 * ("127.0.0.1:8080", not "*:8080" for a lab bound to loopback only); before anything listens,
 * the address asked for, or the port alone.
 */
function watched(sample: PortSample): string {
  const bound = [...new Set(sample.listeners.map((listener) => listener.local))];
  if (bound.length > 0) return bound.join(', ');
  return sample.host === '*' ? `port ${sample.port}` : `${sample.host}:${sample.port}`;
}

/**
 * A kernel state name as `ss` spells it (SYN_SENT → SYN-SENT, ESTABLISHED → ESTAB), so the view
 * and the `ss` lines the READMEs show read the same.
 */
export function ssStateName(state: string): string {
  return state === 'ESTABLISHED' ? 'ESTAB' : state.replace(/^FIN_WAIT(\d)$/, 'FIN-WAIT-$1').replaceAll('_', '-');
}

/** The screen for this state: plain text, one line per row, no colour or cursor codes. */
export function renderScreen(state: ViewState, options: RenderOptions): string {
  const { sample } = state;
  const width = Math.max(options.width, 40);
  const rowsPerPlace = options.rowsPerPlace ?? 8;
  const lines: string[] = [];
  const elapsed = (sample.atMs - state.startedAtMs) / 1000;
  lines.push(`watching ${watched(sample)} for ${elapsed.toFixed(0)} s   (q or Ctrl-C to quit)`);
  lines.push('');

  if (sample.listeners.length === 0) {
    lines.push(`nothing listens on port ${sample.port}: start a lab (make lab-01 PORT=${sample.port}) and this view picks it up`);
  } else {
    lines.push(`listening sockets (${sample.listeners.length})         accept queue / backlog`);
    for (const listener of sample.listeners) {
      const backlog = listener.backlog === undefined ? '?' : String(listener.backlog);
      lines.push(`  ${pad(listener.local, 30)} ${padLeft(String(listener.acceptQueue), 6)} / ${backlog}`);
    }
  }
  const overflows = sample.counters.listenOverflows - state.first.counters.listenOverflows;
  const drops = sample.counters.listenDrops - state.first.counters.listenDrops;
  lines.push(`  since the view started: ListenOverflows +${overflows}, ListenDrops +${drops} (machine-wide)`);
  lines.push('');

  const byPlace = new Map<Place, SocketRow[]>();
  for (const socket of sample.sockets) {
    const place = placeOf(socket);
    if (!place) continue;
    const list = byPlace.get(place) ?? [];
    list.push(socket);
    byPlace.set(place, list);
  }
  const counts = PLACE_ORDER.map((p) => `${p} ${byPlace.get(p)?.length ?? 0}`).join(' · ');
  lines.push(`connections: ${counts}`);
  lines.push(`  opened ${state.openedPerSecond.toFixed(1)}/s, closed ${state.closedPerSecond.toFixed(1)}/s (from /proc/net/tcp, TIME-WAIT included)`);
  lines.push(`  ${pad('place', 13)} ${pad('client', 22)} ${pad('state', 12)} ${padLeft('send-q', 9)} ${padLeft('recv-q', 9)} ${padLeft('for', 8)}`);
  for (const place of PLACE_ORDER) {
    const sockets = (byPlace.get(place) ?? []).sort((a, b) => a.remote.localeCompare(b.remote) || a.local.localeCompare(b.local));
    for (const socket of sockets.slice(0, rowsPerPlace)) {
      const since = state.places.get(socketKey(socket))?.sinceMs ?? sample.atMs;
      const client = socket.side === 'server' ? socket.remote : socket.local;
      lines.push(
        `  ${pad(place, 13)} ${pad(client, 22)} ${pad(ssStateName(socket.state), 12)} ${padLeft(bytes(socket.sendQ), 9)} ${padLeft(bytes(socket.recvQ), 9)} ${padLeft(age(sample.atMs - since), 8)}`,
      );
    }
    if (sockets.length > rowsPerPlace) lines.push(`  ${pad(place, 13)} … and ${sockets.length - rowsPerPlace} more`);
  }
  for (const place of PLACE_ORDER) if (byPlace.has(place)) lines.push(`  ${place}: ${PLACE_MEANING[place]}`);
  if (byPlace.size > 0) lines.push("  for: how long this view has seen it there (since the view started, for what was there already)");
  lines.push('');

  if (sample.processes.length > 0) {
    lines.push(`server processes (${sample.processes.length}), found from the listening socket's inode`);
    lines.push(`  ${padLeft('pid', 7)} ${padLeft('ppid', 7)} ${padLeft('threads', 7)} ${padLeft('cpu%', 6)} ${padLeft('rss', 10)}  command`);
    const before = new Map(state.previous?.processes.map((p) => [p.pid, p]) ?? []);
    const seconds = state.previous ? (sample.atMs - state.previous.atMs) / 1000 : 0;
    for (const p of sample.processes) {
      const prior = before.get(p.pid);
      const cpu = prior && seconds > 0 ? (((p.cpuMs - prior.cpuMs) / 1000 / seconds) * 100).toFixed(0) : '–';
      lines.push(`  ${padLeft(String(p.pid), 7)} ${padLeft(String(p.ppid), 7)} ${padLeft(String(p.threads), 7)} ${padLeft(cpu, 6)} ${padLeft(bytes(p.rssBytes), 10)}  ${p.command}`);
    }
  }
  for (const event of state.events.slice(0, 5)) lines.push(`  ${age(sample.atMs - event.atMs)} ago: ${event.text}`);
  return lines.map((line) => (line.length > width ? line.slice(0, width) : line)).join('\n');
}
