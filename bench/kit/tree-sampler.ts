/**
 * The one sampler of a server's process tree, shared by every experiment: every `intervalMs` it
 * reads the tree from /proc (harness/processes.ts) and keeps what the experiment makes of it.
 *
 * `WindowSampler` is the benchmark's use: what one measured window cost the server's whole tree
 * (CPU time, peak memory) and the load generator's own CPU, which is this process. CPU comes from
 * /proc at the window's two ends, so it is exact to the kernel's 10 ms tick and includes children
 * that exited during the window once their parent has reaped them. Memory is sampled every
 * `intervalMs` (a tree's peak between two samples can be missed; the report says so). For a server
 * started elsewhere (`--target`) every server figure is null: unavailable.
 */

import { treeUsage, type TreeUsage, type UsageOptions } from '../../harness/processes.js';

/** Samples `pid`'s tree from `start()` to `stop()`, each sample made by `toSample`. */
export class TreeSampler<S> {
  readonly samples: S[] = [];
  readonly #pid: number;
  readonly #intervalMs: number;
  readonly #options: UsageOptions;
  readonly #toSample: (tree: TreeUsage, sinceStartMs: number) => S;
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;

  constructor(pid: number, intervalMs: number, options: UsageOptions, toSample: (tree: TreeUsage, sinceStartMs: number) => S) {
    this.#pid = pid;
    this.#intervalMs = intervalMs;
    this.#options = options;
    this.#toSample = toSample;
  }

  /** Takes the first sample now, then one every interval. */
  start(): S {
    this.#startedAt = performance.now();
    const first = this.take();
    this.#timer = setInterval(() => this.take(), this.#intervalMs);
    this.#timer.unref();
    return first;
  }

  take(): S {
    const sample = this.#toSample(treeUsage(this.#pid, this.#options), Math.round(performance.now() - this.#startedAt));
    this.samples.push(sample);
    return sample;
  }

  /** Stops and takes one last sample. */
  stop(): S {
    clearInterval(this.#timer);
    return this.take();
  }
}

export interface WindowUsage {
  readonly wallMs: number;
  /** user+system CPU of the server tree during the window, ms; null when unavailable. */
  readonly serverCpuMs: number | null;
  readonly peakRssBytes: number | null;
  /** Most processes the tree had at a sample. */
  readonly peakProcesses: number | null;
  readonly loadGenCpuMs: number;
  /** Load generator CPU as a share of one core: 100 means it kept one core busy the whole time. */
  readonly loadGenCorePct: number;
}

/** A window's sampling: often enough to catch a forking server's peak, cheaply enough not to load it. */
const WINDOW_SAMPLE_MS = 200;

export class WindowSampler {
  readonly #tree: TreeSampler<TreeUsage> | undefined;
  #startWall = 0;
  #startOwn: NodeJS.CpuUsage = { user: 0, system: 0 };

  constructor(pid: number | undefined, intervalMs = WINDOW_SAMPLE_MS) {
    // Descriptors are not counted: listing every fd directory several times a second costs the server.
    this.#tree = pid === undefined ? undefined : new TreeSampler(pid, intervalMs, {}, (tree) => tree);
  }

  start(): void {
    this.#startWall = performance.now();
    this.#startOwn = process.cpuUsage();
    this.#tree?.start();
  }

  stop(): WindowUsage {
    const own = process.cpuUsage(this.#startOwn);
    const wallMs = performance.now() - this.#startWall;
    const loadGenCpuMs = (own.user + own.system) / 1000;
    const loadGen = { wallMs, loadGenCpuMs, loadGenCorePct: wallMs > 0 ? (100 * loadGenCpuMs) / wallMs : 0 };
    if (!this.#tree) return { ...loadGen, serverCpuMs: null, peakRssBytes: null, peakProcesses: null };
    const last = this.#tree.stop();
    const samples = this.#tree.samples;
    return {
      ...loadGen,
      serverCpuMs: Math.max(0, last.cpuMs - samples[0]!.cpuMs),
      peakRssBytes: Math.max(...samples.map((s) => s.rssBytes)),
      peakProcesses: Math.max(...samples.map((s) => s.processes)),
    };
  }
}
