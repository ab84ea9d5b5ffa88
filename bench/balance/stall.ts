/**
 * Step 2, a stalled worker. Threads cannot be stopped one at a time (a stop signal stops the whole
 * process), so one loop is stalled with work instead: the lab runs `--protocol http --work-us W`,
 * and a "staller" client sends K requests in one write. They arrive in one read, and the loop
 * answers them one after another inside that read's callback, so for about K × W it neither
 * accepts nor reads anything else. Meanwhile "probe" clients arrive at a steady rate, each sends
 * one request and times its response. Which worker served each probe comes from the lab's
 * per-connection log lines, matched by the probe's port.
 */

import { startLab } from '../../harness/launch.js';
import { Peer } from '../load/peer.js';
import { workerOf } from './log-lines.js';
import type { StallRun, StallSettings } from './results.js';

const request = (close: boolean) => `GET /stall HTTP/1.1\r\nHost: balance\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
/** The status line every answer starts with; the staller counts them. */
const OK = 'HTTP/1.1 200 OK\r\n';
/** Bound on any one client: the whole stall plus a margin, on a busy machine. */
const CLIENT_TIMEOUT_MS = 60_000;

/**
 * Sends `text` and collects everything until the server closes (every request here ends with
 * `Connection: close`). Resolves with the bytes and the local port; `onConnect` learns the port first.
 */
async function exchange(host: string, port: number, text: string, onConnect: (localPort: number) => Promise<void> | void = () => {}): Promise<{ reply: string; localPort: number }> {
  const peer = await Peer.open(port, host);
  // Read at connect: a destroyed socket no longer knows its port.
  const localPort = peer.socket.localPort!;
  try {
    await onConnect(localPort);
    peer.socket.write(text);
    const reply = (await peer.until(() => false, CLIENT_TIMEOUT_MS)).toString('latin1');
    if (peer.error) throw peer.error;
    return { reply, localPort };
  } finally {
    peer.socket.destroy();
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function measureStall(labId: string, policy: { name: string; args: readonly string[] }, settings: StallSettings): Promise<StallRun> {
  const { workers, workUs, requests, probeIntervalMs } = settings;
  // Not --quiet: the per-connection lines say which worker served each client.
  const lab = await startLab(labId, ['--workers', String(workers), ...policy.args, '--protocol', 'http', '--work-us', String(workUs)]);
  let probes: { sentAtMs: number; responseMs: number | null; localPort: number }[];
  let stallMs: number;
  let stalledWorker: number | null = null;
  try {
    // The staller: connected first, and its loop known (from its log line) before it stalls it.
    let stallStart = 0;
    let began!: () => void;
    const stallBegan = new Promise<void>((resolve) => (began = resolve));
    const pipelined = Array.from({ length: requests }, (_, i) => request(i === requests - 1)).join('');
    const staller = exchange(lab.host, lab.port, pipelined, async (localPort) => {
      const line = await lab.waitForLine(new RegExp(`client 127\\.0\\.0\\.1:${localPort} connected`), 10_000);
      const worker = Number(/worker (\d+)\]/.exec(line)?.[1]);
      stalledWorker = Number.isInteger(worker) ? worker : null;
      stallStart = performance.now();
      began();
    }).then(({ reply }) => {
      const answered = reply.split(OK).length - 1;
      if (answered !== requests) throw new Error(`the staller got ${answered} of ${requests} answers`);
      return performance.now() - stallStart;
    });
    // Probes start once the staller's requests are written, spread over the stall it causes.
    await Promise.race([stallBegan, staller]);
    const stallWindowMs = (requests * workUs) / 1000;
    const count = Math.max(1, Math.floor(stallWindowMs / probeIntervalMs));
    probes = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        // Half an interval in: the staller's bytes have reached its loop and the stall has begun.
        await delay(stallStart + (i + 0.5) * probeIntervalMs - performance.now());
        const started = performance.now();
        const sentAtMs = Math.round(started - stallStart);
        try {
          const { reply, localPort } = await exchange(lab.host, lab.port, request(true));
          return { sentAtMs, responseMs: reply.startsWith(OK) ? performance.now() - started : null, localPort };
        } catch {
          return { sentAtMs, responseMs: null, localPort: 0 };
        }
      }),
    );
    stallMs = await staller;
  } finally {
    // Stopped before the log is read: a worker's lines reach stdout through the main thread.
    await lab.stop('SIGTERM');
  }
  const stdout = lab.output().stdout;
  return {
    policy: policy.name,
    workers,
    stalledWorker,
    stallerRequests: requests,
    stallMs: Math.round(stallMs),
    probes: probes.map((p) => ({
      sentAtMs: p.sentAtMs,
      responseMs: p.responseMs === null ? null : Math.round(p.responseMs * 10) / 10,
      worker: p.localPort ? workerOf(stdout, p.localPort) : null,
    })),
  };
}
