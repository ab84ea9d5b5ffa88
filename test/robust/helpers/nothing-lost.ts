/**
 * The nothing-lost check that closes every robust case:
 *   1. No connection the case opened through it was reset or failed. Echo: every one that closed
 *      cleanly (our FIN, then the server's) got back exactly the bytes it sent, same count, same
 *      SHA-256; one the server closed first got back no more than it sent. HTTP: every one got
 *      only whole responses (each framed by its Content-Length), never a response cut short.
 *   2. The server is still the process that started: same pid, never exited.
 *   3. Its open file descriptors, its live children (lab 02) and its threads (lab 03's workers)
 *      return to the baseline taken before the case, and no child is left a zombie.
 *   4. It still serves: a fresh probe connection gets its exact echo; then 3 holds again.
 *
 * The baseline is taken after one warm-up connection, because a server's first connection sets
 * up things that stay for its lifetime (lab 02's first fork installs libuv's SIGCHLD pipe).
 */

import { expect } from 'vitest';
import type { LabProcess } from '../../../harness/launch.js';
import { fdTargets, openFds, treeUsage } from '../../../harness/processes.js';
import { eventually } from '../../helpers/util.js';
import { EchoClient, type EchoClientOptions } from './echo-client.js';
import { httpResponse, wholeResponsesLength } from './http.js';
import { isAlive, liveChildren, threadCount, zombieChildren } from './observe.js';

/**
 * Generous: after a burst of connections lab 02 may have dozens of children still starting up
 * (each a whole Node process) before they can exit, on a busy 2-core machine.
 */
const SETTLE_TIMEOUT_MS = 60_000;
/** The fd count must hold still this long to count as settled. */
const QUIET_MS = 300;

export interface Baseline {
  readonly fds: number;
  readonly children: number;
  readonly threads: number;
  /** Resident memory of the whole process tree at rest. */
  readonly rssBytes: number;
}

export type Protocol = 'echo' | 'http';

export class NothingLost {
  readonly #clients: EchoClient[] = [];

  private constructor(
    readonly lab: LabProcess,
    readonly protocol: Protocol,
    readonly baseline: Baseline,
  ) {}

  /** Warms the server up with one connection, waits until it is at rest, and takes the baseline. */
  static async begin(lab: LabProcess, protocol: Protocol = 'echo'): Promise<NothingLost> {
    await probe(lab, protocol);
    return new NothingLost(lab, protocol, await settle(lab));
  }

  /** Opens a client whose books the final check will read. */
  async connect(options?: EchoClientOptions): Promise<EchoClient> {
    // HTTP replies are checked as responses, so the client keeps what it receives.
    const client = await EchoClient.connect(this.lab.port, this.protocol === 'http' ? { ...options, keep: true } : options);
    this.#clients.push(client);
    return client;
  }

  /**
   * Check 1 alone, for cases that end with the server gone (a shutdown). `neverAccepted`: clients
   * the case has shown were still in the kernel's accept queue when the listening socket closed,
   * which the kernel resets (lab 01 at shutdown); not one byte of theirs was taken.
   */
  verifyEchoes(neverAccepted: readonly EchoClient[] = []): void {
    for (const [i, client] of this.#clients.entries()) {
      if (neverAccepted.includes(client)) continue;
      // A reset (or any socket error) loses what was in flight: never acceptable here.
      expect(client.error, `client ${i}: the connection failed`).toBeUndefined();
      if (this.protocol === 'http') {
        const received = client.receivedBytes.toString('latin1');
        expect(wholeResponsesLength(received), `client ${i}: only whole responses`).toBe(received.length);
      } else if (client.closedCleanly) {
        expect(client.received, `client ${i}: bytes echoed`).toBe(client.sent);
        expect(client.receivedDigest(), `client ${i}: checksum of the echo`).toBe(client.sentDigest());
      } else {
        expect(client.received, `client ${i}: no more echoed than sent`).toBeLessThanOrEqual(client.sent);
      }
    }
  }

  async verify(): Promise<void> {
    const { lab } = this;
    this.verifyEchoes();
    expect({ exitCode: lab.child.exitCode, signal: lab.child.signalCode }, 'server still running').toEqual({ exitCode: null, signal: null });
    expect(isAlive(lab.pid), `server pid ${lab.pid} alive`).toBe(true);
    // Back to baseline once the case's clients are gone, still serving, and back again after.
    await this.#backToBaseline();
    await probe(lab, this.protocol);
    await this.#backToBaseline();
  }

  async #backToBaseline(): Promise<void> {
    const { lab, baseline } = this;
    let now = snapshot(lab.pid);
    try {
      await eventually(
        () => {
          now = snapshot(lab.pid);
          return now.fds === baseline.fds && now.children === baseline.children && now.zombies === 0 && now.threads === baseline.threads
            ? true
            : undefined;
        },
        SETTLE_TIMEOUT_MS,
      );
    } catch {
      throw new Error(
        `server resources did not return to baseline: now ${JSON.stringify(now)}, baseline ${JSON.stringify(baseline)}; ` +
          `open fds: ${fdTargets(lab.pid).join(' ')}`,
      );
    }
  }
}

function snapshot(pid: number) {
  return { fds: openFds(pid), children: liveChildren(pid).length, zombies: zombieChildren(pid).length, threads: threadCount(pid) };
}

/** Waits until the server has no live child and its fd count has held still for QUIET_MS. */
async function settle(lab: LabProcess): Promise<Baseline> {
  let last = -1;
  let since = Date.now();
  const fds = await eventually(
    () => {
      const fds = openFds(lab.pid);
      if (fds !== last || liveChildren(lab.pid).length > 0 || zombieChildren(lab.pid).length > 0) {
        last = fds;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= QUIET_MS ? fds : undefined;
    },
    SETTLE_TIMEOUT_MS,
    'the server to come to rest',
  );
  return { fds, children: 0, threads: threadCount(lab.pid), rssBytes: treeUsage(lab.pid).rssBytes };
}

/** One short exchange on a fresh connection, checked byte for byte, then closed by both sides. */
export async function probe(lab: LabProcess, protocol: Protocol): Promise<void> {
  const client = await EchoClient.connect(lab.port, { keep: true });
  try {
    if (protocol === 'echo') {
      const message = Buffer.from(`probe ${Date.now()}\n`);
      await client.send(message);
      client.end();
      await client.waitForEnd();
      expect(client.receivedBytes.toString(), 'probe echo').toBe(message.toString());
    } else {
      await client.send(Buffer.from('GET /probe HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n'));
      await client.waitForEnd();
      expect(client.receivedBytes.toString(), 'probe response').toBe(httpResponse('/probe', true));
      client.end();
    }
    await client.waitForClose();
  } finally {
    client.destroy();
  }
}

/** Resolves with the server's exit status once it exits by itself, or fails after `timeoutMs`. */
export function waitForExit(lab: LabProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const { child } = lab;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${lab.id} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** SIGTERM, then exit 0 within `withinMs`; returns how long the server took to exit. */
export async function stopCleanly(lab: LabProcess, withinMs = 15_000): Promise<number> {
  const started = performance.now();
  const { code, signal } = await lab.stop('SIGTERM', withinMs);
  // On failure, what the server last wrote to stderr (a crash's own message) is in the report.
  const said = () => lab.output().stderr.trim().split('\n').slice(-15).join('\n');
  expect({ code, signal }, code === 0 && signal === null ? '' : `${lab.id} exit after SIGTERM; its stderr ended:\n${said()}`).toEqual({ code: 0, signal: null });
  return performance.now() - started;
}
