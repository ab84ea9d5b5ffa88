/**
 * The sampler's thread (see port-sampler.ts): one sample now, then one every `intervalMs`; on 'stop',
 * a last one, and everything goes back to the main thread.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { processTree } from '../../harness/processes.js';
import { listenDrops, tcpSnapshot } from '../../harness/sockets.js';
import type { RawSample, SamplerConfig } from './port-sampler.js';

const config = workerData as SamplerConfig;
const port = parentPort!;
const baseline = listenDrops();
const samples: RawSample[] = [];

function take(): void {
  const tcp = tcpSnapshot(config.port, config.family);
  // Stamped after the read: on a busy machine this thread can be held up between any two lines,
  // and a time taken before the read could date a state earlier than it was actually seen.
  const t = performance.timeOrigin + performance.now() - config.t0;
  const counters = listenDrops();
  samples.push({
    t: Math.round(t * 10) / 10,
    acceptQueueDepth: tcp.acceptQueueDepth ?? 0,
    listenOverflows: counters.listenOverflows - baseline.listenOverflows,
    listenDrops: counters.listenDrops - baseline.listenDrops,
    processes: processTree(config.pid).length,
    sockets: tcp.sockets,
  });
}

take();
port.postMessage({ type: 'ready' });
const timer = setInterval(take, config.intervalMs);
port.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  take();
  port.postMessage({ type: 'samples', samples });
  port.close();
});
