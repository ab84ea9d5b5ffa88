/**
 * The scripted arrival: the same few clients, at the same moments, against every lab.
 *
 *   1. Client 1 connects, sends a line and waits for its echo: now it is being served.
 *   2. From then on, clients 2..K start connecting `gapMs` apart. Each sends its line the moment
 *      its handshake completes, and closes as soon as the echo is back.
 *   3. Client 1 keeps its connection open for `holdMs` after connecting, then closes.
 *
 * A server that serves one client at a time cannot answer clients 2..K until step 3; a
 * concurrent one answers them at once. Each client records when it connected, when its echo
 * arrived and how it ended; where it waited is decided later, from what the kernel showed.
 */

import net from 'node:net';
import type { ArrivalSettings, ClientTiming, Outcome } from './results.js';


export interface ArrivalEvents {
  /** A client changed state ('connected', 'echo', 'closed', or its outcome). */
  onClient?(client: number, event: string, atMs: number): void;
}

export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Runs the arrival to the end (every client served, failed or timed out). `now()` is the run's clock. */
export async function runArrival(
  target: Target,
  settings: ArrivalSettings,
  now: () => number,
  signal: AbortSignal,
  events: ArrivalEvents = {},
): Promise<ClientTiming[]> {
  const first = runClient(1, target, settings, now, signal, events);
  // Step 2 starts once client 1 is provably being served (or has failed: then there is nothing to hold).
  await Promise.race([first.echoed, first.done]);
  const others: Array<Promise<ClientTiming>> = [];
  for (let n = 2; n <= settings.clients; n++) {
    others.push(
      delay(settings.gapMs * (n - 1), signal).then(() => runClient(n, target, settings, now, signal, events).done),
    );
  }
  return [await first.done, ...(await Promise.all(others))];
}

interface RunningClient {
  readonly echoed: Promise<void>;
  readonly done: Promise<ClientTiming>;
}

function runClient(
  client: number,
  target: Target,
  settings: ArrivalSettings,
  now: () => number,
  signal: AbortSignal,
  events: ArrivalEvents,
): RunningClient {
  const line = Buffer.from(`hello from client ${client}\n`);
  const startMs = now();
  const timing: { -readonly [K in keyof ClientTiming]: ClientTiming[K] } = { client, startMs, outcome: 'failed' };
  let received = 0;
  let markEchoed = () => {};
  const echoed = new Promise<void>((resolve) => (markEchoed = resolve));

  const done = new Promise<ClientTiming>((resolve) => {
    if (signal.aborted) return resolve({ ...timing, error: 'aborted' });
    const socket = net.connect({ host: target.host, port: target.port });
    let holdTimer: NodeJS.Timeout | undefined;
    const note = (event: string) => events.onClient?.(client, event, now());

    let finished = false;
    const finish = (outcome: Outcome, error?: string) => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      clearTimeout(holdTimer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      timing.outcome = outcome;
      if (error !== undefined) timing.error = error;
      note(outcome);
      resolve({ ...timing });
    };
    const deadline = setTimeout(() => {
      if (timing.connectMs === undefined) finish('connect timed out', `no handshake within ${settings.clientTimeoutMs} ms`);
      else if (timing.firstEchoMs === undefined) finish('no echo (timed out)', `no echo within ${settings.clientTimeoutMs} ms`);
      else finish('served', `not closed within ${settings.clientTimeoutMs} ms`);
    }, settings.clientTimeoutMs);
    const onAbort = () => finish('failed', 'aborted');
    signal.addEventListener('abort', onAbort, { once: true });

    socket.on('connect', () => {
      timing.connectMs = now();
      timing.localPort = socket.localPort;
      note('connected');
      socket.write(line);
      if (client === 1) {
        holdTimer = setTimeout(() => {
          timing.closeMs = now();
          socket.end();
        }, Math.max(0, settings.holdMs - (now() - timing.connectMs)));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      if (received === 0) {
        timing.firstEchoMs = now();
        note('echo');
        markEchoed();
      }
      received += chunk.length;
      if (client !== 1 && received >= line.length && timing.closeMs === undefined) {
        timing.closeMs = now();
        socket.end();
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      if (code === 'ECONNREFUSED') finish('refused', code);
      else if (code === 'ECONNRESET' && timing.firstEchoMs === undefined) finish('reset', code);
      else finish(timing.firstEchoMs === undefined ? 'failed' : 'served', code);
    });
    socket.on('close', () => {
      if (finished) return;
      timing.closedMs = now();
      finish(timing.firstEchoMs === undefined ? 'failed' : 'served', timing.firstEchoMs === undefined ? 'closed without an echo' : undefined);
    });
  });
  return { echoed, done };
}

/** The scenario's own pacing (not synchronization): resolves after `ms`, or at once when aborted. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
