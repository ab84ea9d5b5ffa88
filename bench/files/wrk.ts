/**
 * wrk (https://github.com/wg/wrk), the HTTP load tool of the files experiment: a C client on
 * epoll that keeps N keep-alive connections busy and reads each response into its own buffer.
 * Why wrk: it costs far less per request than any Node client (autocannon parses every response
 * in JavaScript), so at 64 MiB a response it reads at memory speed; its own CPU is measured in
 * every run and reported beside the server's, so a run it capped says so.
 *
 * Its numbers come from a Lua `done()` hook that prints wrk's own summary as JSON (requests,
 * bytes read, duration, errors by kind) rather than from its human-readable text. Its CPU comes
 * from the shell that runs it: once wrk has exited and been reaped, the shell's own
 * /proc/PID/stat holds wrk's user and system time in its cutime and cstime fields, exact to the
 * kernel's tick.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface WrkRun {
  readonly requests: number;
  readonly bytes: number;
  readonly durationMs: number;
  /** connect, read, write, status (non-2xx) and timeout errors, summed. */
  readonly errors: number;
  readonly timeouts: number;
  /** wrk's own user + system CPU over the whole run, ms. */
  readonly cpuMs: number;
  /**
   * Each request's time from its write to its response's last byte, over the run (wrk's own
   * histogram, µs; closed loop: a request waits for the one before it on its connection). Absent
   * from runs measured before the files experiment's schema 2.
   */
  readonly latency?: { readonly p50Us: number; readonly p99Us: number; readonly maxUs: number };
}

const DONE_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK-JSON {"requests":%d,"bytes":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
`;

/** Clock ticks per second, for the /proc times (100 on every Linux this runs on, but asked). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Why wrk cannot run here, or undefined. */
export function wrkUnavailable(): string | undefined {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch (error) {
    // wrk --version exits 1 after printing its version: only a missing binary is a problem.
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'wrk is not installed (apt-get install wrk)' : undefined;
  }
}

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly seconds: number;
  /** Per-request timeout: a response slower than this counts as a timeout error. */
  readonly timeoutSeconds: number;
}

/** One wrk run of `seconds` on one thread (the other core stays the server's). */
export async function runWrk(options: WrkOptions): Promise<WrkRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'iolab-wrk-'));
  const script = path.join(dir, 'done.lua');
  writeFileSync(script, DONE_SCRIPT);
  const args = ['-t', '1', '-c', String(options.connections), '-d', `${options.seconds}s`, '--timeout', `${options.timeoutSeconds}s`, '-s', script, options.url];
  try {
    const output = await new Promise<string>((resolve, reject) => {
      // "$@" keeps every argument whole; `cat /proc/$$/stat` runs after wrk has been reaped.
      const child = spawn('sh', ['-c', 'wrk "$@" && cat /proc/$$/stat', 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited with ${code}: ${stderr.trim() || stdout.trim()}`))));
    });
    return parseWrk(output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** wrk's JSON line and the shell's stat line (its reaped children's times) into one run. */
export function parseWrk(output: string): WrkRun {
  const json = /^WRK-JSON (.*)$/m.exec(output)?.[1];
  if (!json) throw new Error(`wrk printed no summary: ${output.slice(0, 300)}`);
  const s = JSON.parse(json) as Record<string, number>;
  const statLine = output.trim().split('\n').at(-1)!;
  // Fields after the command name's closing parenthesis, from field 3 (state): cutime is field 16, cstime 17.
  const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[13]) + Number(fields[14]);
  return {
    requests: s.requests!,
    bytes: s.bytes!,
    durationMs: s.durationUs! / 1000,
    errors: s.connect! + s.read! + s.write! + s.status! + s.timeout!,
    timeouts: s.timeout!,
    cpuMs: (cpuTicks * 1000) / TICKS_PER_SECOND,
    ...(s.p50Us !== undefined ? { latency: { p50Us: s.p50Us, p99Us: s.p99Us!, maxUs: s.maxUs! } } : {}),
  };
}
