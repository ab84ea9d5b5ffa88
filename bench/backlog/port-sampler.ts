/**
 * Reads, at a fixed interval, what the kernel shows about one listening port: the accept-queue
 * depth of the LISTEN socket, the machine's listen-overflow counters, the lab's process count,
 * and every TCP socket with the port at one end. It reads /proc only and never touches the
 * server, so the server cannot tell it is being watched.
 *
 * The reads run on a worker thread: reading /proc/net/tcp makes the kernel walk its whole
 * connection table (milliseconds on a busy machine), and doing that on the clients' thread would
 * delay the very connects and echoes being timed.
 */

import { Worker } from 'node:worker_threads';
import type { TcpSocket } from '../../harness/sockets.js';

export interface RawSample {
  readonly t: number;
  readonly acceptQueueDepth: number;
  /** Increases since the sampler started (the counters are machine-wide). */
  readonly listenOverflows: number;
  readonly listenDrops: number;
  readonly processes: number;
  readonly sockets: readonly TcpSocket[];
}

export interface SamplerConfig {
  readonly port: number;
  readonly family: 'tcp' | 'tcp6';
  /** The lab's pid: its process tree is counted. */
  readonly pid: number;
  readonly intervalMs: number;
  /** The run's time zero, as performance.timeOrigin + performance.now(), shared by both threads. */
  readonly t0: number;
}

export interface Sampler {
  /** Takes one last sample, stops, and returns every sample in time order. */
  stop(): Promise<RawSample[]>;
  /** Ends the worker without collecting (cleanup after a failure). */
  terminate(): Promise<void>;
}

/** Resolves once the first sample is taken, so nothing happens before the watching starts. */
export function startSampler(config: SamplerConfig): Promise<Sampler> {
  const compiled = import.meta.url.endsWith('.js');
  const worker = compiled
    ? new Worker(new URL('./port-sampler-worker.js', import.meta.url), { workerData: config })
    : new Worker(new URL('./ts-worker.mjs', import.meta.url), {
        workerData: { ...config, tsEntry: new URL('./port-sampler-worker.ts', import.meta.url).href },
      });
  const collected = new Promise<RawSample[]>((resolve, reject) => {
    worker.on('message', (message: { type: string; samples?: RawSample[] }) => {
      if (message.type === 'samples') resolve(message.samples ?? []);
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`sampler exited (code ${code}) before handing over its samples`)));
  });
  collected.catch(() => {}); // observed through stop(); a failure before that is reported by `ready`
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`sampler exited (code ${code}) before its first sample`)));
    worker.once('message', () =>
      resolve({
        async stop() {
          worker.postMessage('stop');
          return collected;
        },
        async terminate() {
          await worker.terminate();
        },
      }),
    );
  });
}
