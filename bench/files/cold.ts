/**
 * The files experiment's cold-cache scenario (issue 31): while one client downloads a large file
 * whose pages are not in the page cache, do the server's other clients wait for the disk?
 *
 * A regular file is always "ready" to epoll, so a readiness loop that sendfile()s or read()s a
 * page that is not in memory sleeps in the kernel while the disk answers, and every other client
 * of that loop waits (nginx added thread pools for this; libuv sends file reads to its pool).
 * io_uring takes the read and the loop goes on. The expectation to test, not to assume: the labs
 * that read on their loop (05; 01 serves one client at a time anyway) stall their other clients
 * for the disk's time, Node's stream labs (02, 03, 04, 06) hide it in libuv's pool, lab 07 does
 * not stall.
 *
 * For each target, two runs of the same length on one server: the large file warm, then cold.
 * In each, `smallConnections` wrk connections fetch a small file (warm: it is read again and
 * again) and report their latency percentiles, while one client downloads the large file again
 * and again for as long as wrk runs. Before each cold download the file's pages are dropped
 * with posix_fadvise(POSIX_FADV_DONTNEED) (no root needed; the file is written and fsync'ed
 * first, so its pages are clean and can be dropped), and before every download, cold or warm,
 * mincore(2) on a mapping of the file counts its pages in memory: each download's share resident
 * is kept, so a "cold" run that was not cold shows.
 *
 * The disk's own read rate: the large file dropped and read once straight through (1 MiB reads),
 * before the targets and again after them, in the same run: a cold download cannot go faster,
 * so a stall per request can be checked against it. On a VM the "disk" may be the host's cache.
 */

import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as libc from '../../shared/libc.js';
import { startLab } from '../../harness/launch.js';
import type { Progress } from '../kit/progress.js';
import { fileName, type FileTarget } from './measure.js';
import { runWrk, type WrkRun } from './wrk.js';

export interface ColdPlan {
  readonly largeBytes: number;
  readonly smallBytes: number;
  /** wrk connections fetching the small file. */
  readonly smallConnections: number;
  /** Seconds of each run (warm, cold). */
  readonly seconds: number;
}

/** One download of the large file, and how much of it was in the page cache as it began. */
export interface Download {
  readonly bytes: number;
  readonly ms: number;
  /** Share of the file's pages resident just before the request (mincore), 0 to 1. */
  readonly residentBefore: number;
}

export interface ColdRun {
  readonly cache: 'warm' | 'cold';
  /** The small-file clients: wrk's summary and latency percentiles. */
  readonly small: WrkRun;
  readonly downloads: readonly Download[];
}

export type ColdTarget =
  | { readonly target: FileTarget; readonly runs: readonly ColdRun[] }
  /** Not measured, and why (a lab that serves one connection at a time). */
  | { readonly target: FileTarget; readonly skipped: string };

/** The large file read straight through by the harness after its pages were dropped. */
export interface DiskRead {
  readonly bytes: number;
  readonly ms: number;
  readonly residentBefore: number;
}

export interface ColdResults {
  readonly plan: ColdPlan;
  readonly disk: { readonly before: DiskRead; readonly after: DiskRead };
  readonly targets: readonly ColdTarget[];
}

/** Lab flags here: quiet, and timeouts that never end a connection the scenario is still using. */
const LAB_ARGS = ['--quiet', '--idle-timeout', '600', '--shutdown-timeout', '2'];

/** The page size mincore counts in (4 KiB on x86-64 and on arm64 as Linux distributions build it). */
const PAGE_BYTES = 4096;

/** Share of `file`'s pages in the page cache now: mincore(2) on a read-only shared mapping of it. */
export function residentShare(file: string, bytes: number): number {
  const fd = openSync(file, 'r');
  try {
    const map = libc.mmap(null, bytes, libc.PROT_READ, libc.MAP_SHARED, fd, 0);
    if (libc.isMapFailed(map)) throw libc.callError('mmap', libc.errno());
    try {
      const pages = new Uint8Array(Math.ceil(bytes / PAGE_BYTES));
      if (libc.mincore(map, bytes, pages) < 0) throw libc.callError('mincore', libc.errno());
      return pages.reduce((sum, page) => sum + (page & 1), 0) / pages.length;
    } finally {
      libc.munmap(map, bytes);
    }
  } finally {
    closeSync(fd);
  }
}

/** Drops `file`'s pages from the page cache (fsync first: only clean pages can be dropped). */
export function evict(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
    const error = libc.posix_fadvise(fd, 0, 0, libc.POSIX_FADV_DONTNEED);
    if (error !== 0) throw libc.callError('posix_fadvise', error);
  } finally {
    closeSync(fd);
  }
}

/** The disk's own read rate: `file` dropped from the cache, then read through. */
export function readFromDisk(file: string, bytes: number): DiskRead {
  evict(file);
  const residentBefore = residentShare(file, bytes);
  const started = performance.now();
  const total = readThrough(file);
  return { bytes: total, ms: performance.now() - started, residentBefore };
}

/** Reads `file` from start to end in 1 MiB reads (afterwards every page is in the cache); returns its bytes. */
function readThrough(file: string): number {
  const fd = openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let total = 0;
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) total += n;
  } finally {
    closeSync(fd);
  }
  return total;
}

/** One GET of `target` on its own connection: resolves with the bytes received (head and body) once the server has closed. */
function download(port: number, target: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let bytes = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the download of ${target} took over ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(bytes);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Seconds one target takes by the plan, for the progress line. */
export function coldSeconds(plan: ColdPlan): number {
  return 2 + 2 * (plan.seconds + 1);
}

/**
 * The scenario for one target: a server, then the warm run and the cold run on it. `root` holds
 * the large and the small file (fileName of each size).
 */
export async function measureCold(target: FileTarget, root: string, plan: ColdPlan, progress: Progress): Promise<ColdTarget> {
  if (target.serial) {
    return { target, skipped: 'serves one connection at a time: while one client downloads, no other is served at all, cold or warm' };
  }
  const large = path.join(root, fileName(plan.largeBytes));
  const server = await startLab(target.labId, [...target.args, '--protocol', 'files', '--root', root, ...LAB_ARGS]);
  const runs: ColdRun[] = [];
  try {
    for (const cache of ['warm', 'cold'] as const) {
      progress.update(`the large file ${cache}, ${plan.smallConnections} clients of the small file`);
      if (cache === 'warm') readThrough(large); // every page in the cache
      const downloads: Download[] = [];
      let running = true;
      const downloading = (async () => {
        while (running) {
          if (cache === 'cold') evict(large);
          const residentBefore = residentShare(large, plan.largeBytes);
          const started = performance.now();
          const bytes = await download(server.port, `/${fileName(plan.largeBytes)}`, 120_000);
          downloads.push({ bytes, ms: performance.now() - started, residentBefore });
        }
      })();
      let small: WrkRun;
      try {
        small = await runWrk({ url: `http://${server.host}:${server.port}/${fileName(plan.smallBytes)}`, connections: plan.smallConnections, seconds: plan.seconds, timeoutSeconds: 30 });
      } finally {
        running = false;
        await downloading;
      }
      runs.push({ cache, small, downloads });
    }
  } finally {
    await server.stop('SIGTERM');
  }
  return { target, runs };
}
