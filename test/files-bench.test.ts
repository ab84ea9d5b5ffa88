/**
 * The files experiment's own logic without running it: wrk's summary and CPU parsed from its
 * output, the targets taken from the registry, calls divided per response's worth of bytes, and a
 * report rendered from a results object alone (what --render-only does with the JSON).
 */

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evict, residentShare, type ColdResults } from '../bench/files/cold.js';
import { fileTargets, MiB, responseBytes, type TargetResult } from '../bench/files/measure.js';
import { FILES_SCHEMA, migrateFilesV1, type FilesReport, type FilesResults } from '../bench/files/render.js';
import { readReport } from '../bench/kit/experiment.js';
import { files } from '../bench/files/main.js';
import { renderMarkdown } from '../bench/kit/experiment.js';
import { STAMP } from './helpers/report.js';
import { parseWrk } from '../bench/files/wrk.js';

describe('files experiment', () => {
  it('parseWrk: the JSON summary line, and wrk\'s CPU from its reaped times in the shell\'s stat line', () => {
    const output =
      'Running 1s test @ http://127.0.0.1:1/x\n' +
      'WRK-JSON {"requests":607,"bytes":637167872,"durationUs":1003838,"connect":0,"read":1,"write":0,"status":2,"timeout":3}\n' +
      // pid (comm) state ppid ... field 14 utime, 15 stime, 16 cutime = 15, 17 cstime = 7
      '4242 (sh) S 1 4242 4242 0 -1 4194560 100 200 0 0 0 0 15 7 20 0 1 0 1 1 1\n';
    expect(parseWrk(output)).toEqual({ requests: 607, bytes: 637167872, durationMs: 1003.838, errors: 6, timeouts: 3, cpuMs: 220 });
    // Schema 2's line adds wrk's latency percentiles (µs).
    const withLatency = output.replace('"timeout":3}', '"timeout":3,"p50Us":410,"p99Us":9870,"maxUs":15003}');
    expect(parseWrk(withLatency).latency).toEqual({ p50Us: 410, p99Us: 9870, maxUs: 15003 });
  });

  it('targets: every lab that serves files in its first variant, and labs with --copy once per copy', () => {
    const ids = fileTargets().map((t) => t.id);
    expect(ids).toContain('01-serial (sendfile)');
    expect(ids).toContain('01-serial (read-write)');
    expect(ids).toContain('05-event-loop (sendfile)');
    expect(ids).toContain('05-event-loop (read-write)');
    expect(ids).toContain('04-evented');
    expect(fileTargets().find((t) => t.id === '05-event-loop (read-write)')!.args).toEqual(['--mux', 'epoll', '--trigger', 'level', '--copy', 'read-write']);
    expect(fileTargets().find((t) => t.id === '07-completion (splice)')).toMatchObject({ copy: 'splice', args: ['--submit', 'batch', '--recv', 'multishot', '--copy', 'splice'] });
    expect(ids).toContain('07-completion (read-send)');
  });

  it('the committed results/files.json renders with its cold-cache table; a schema-1 file (before that scenario) is lifted and renders without it', () => {
    const report = readReport(files, path.join('results', 'files.json'));
    expect(report.schema).toBe(FILES_SCHEMA);
    expect(renderMarkdown(files, report)).toContain('## Cold cache');
    const { cold: _cold, ...before } = report.results;
    const lifted = migrateFilesV1({ ...report, schema: 1, results: before } as unknown as Record<string, unknown>);
    expect(lifted?.schema).toBe(FILES_SCHEMA);
    expect(lifted!.results.cold).toBeUndefined();
    const text = renderMarkdown(files, lifted!);
    expect(text).toContain('## System calls per request');
    expect(text).not.toContain('## Cold cache');
    expect(migrateFilesV1({ experiment: 'files', schema: 7 })).toBeUndefined();
  });

  it('posix_fadvise(DONTNEED) drops a written, fsync\'ed file from the page cache and mincore sees it; a read brings it back', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cold-'));
    try {
      const file = path.join(dir, 'f.bin');
      writeFileSync(file, Buffer.alloc(4 * MiB, 7));
      evict(file);
      expect(residentShare(file, 4 * MiB)).toBeLessThan(0.05);
      readFileSync(file);
      expect(residentShare(file, 4 * MiB)).toBe(1);
      closeSync(openSync(file, 'r'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the cold-cache table: each server\'s warm and cold rows with p50/p99, the disk\'s rate, residency; the summary\'s p99 columns and a finding from the data', () => {
    const [readSend] = fileTargets((lab) => lab.id === '07-completion');
    const [sendfile, readWrite] = fileTargets((lab) => lab.id === '05-event-loop');
    const [serial] = fileTargets((lab) => lab.id === '01-serial');
    const small = (p50Us: number, p99Us: number) => ({ requests: 2000, bytes: 1, durationMs: 2000, errors: 0, timeouts: 0, cpuMs: 1, latency: { p50Us, p99Us, maxUs: p99Us * 2 } });
    const runs = (warmP99: number, coldP99: number, coldResident = 0.001) => [
      { cache: 'warm' as const, small: small(500, warmP99), downloads: [{ bytes: 256 * MiB, ms: 200, residentBefore: 1 }] },
      { cache: 'cold' as const, small: small(600, coldP99), downloads: [{ bytes: 256 * MiB, ms: 1000, residentBefore: 0 }, { bytes: 256 * MiB, ms: 1000, residentBefore: coldResident }] },
    ];
    const cold: ColdResults = {
      plan: { largeBytes: 256 * MiB, smallBytes: 4096, smallConnections: 4, seconds: 2 },
      disk: { before: { bytes: 256 * MiB, ms: 1000, residentBefore: 0 }, after: { bytes: 256 * MiB, ms: 1250, residentBefore: 0 } },
      targets: [{ target: serial!, skipped: 'serves one connection at a time' }, { target: sendfile!, runs: runs(2000, 30000) }, { target: readSend!, runs: runs(2000, 2100) }, { target: readWrite!, runs: runs(2000, 90000, 0.5) }],
    };
    const results: FilesResults = { plan: { sizes: [64 * MiB], connections: [1], seconds: 1, warmupSeconds: 0, tracedSeconds: 1 }, tool: 'wrk', targets: [], cold };
    const text = renderMarkdown(files, { experiment: 'files', schema: FILES_SCHEMA, stamp: STAMP, labs: [], results } satisfies FilesReport);
    expect(text).toContain('## Cold cache');
    expect(text).toContain('268 MB/s before the servers\' runs (0.0% resident as it began), 215 MB/s after them');
    expect(text).toContain('| 05 event loop sendfile | cold | 0.60 | 30.00 | 60.00 | 1000 | 0 | 2 | 268 | 0.1% |');
    expect(text).toContain('| 07 completion read-send | warm | 0.50 | 2.00 | 4.00 | 1000 | 0 | 1 | 1342 | 100.0% |');
    expect(text).toContain('| 01 serial sendfile | – | serves one connection at a time |');
    // A "cold" run whose download began half in the page cache is marked, and no finding quotes it.
    expect(text).toContain('| 05 event loop read-write | cold | 0.60 | 90.00 | 180.00 | 1000 | 0 | 2 | 268 | 50.0% ⚠ not cold |');
    expect(text).not.toContain('05 event loop read-write, cold (');
    // The finding names the rows the data picked: most grown first, least grown second.
    expect(text).toContain('P99 of 4k.bin beside a 256m.bin download from the disk, against from the page cache: 05 event loop sendfile, cold (30) against 05 event loop sendfile, warm (2.0), 15× as much.');
    expect(text).toMatch(/07 completion read-send, cold \(2\.1\) against 07 completion read-send, warm \(2\.0\)/);
  });

  it('renders from results alone: the 64 MiB comparison quotes the CPU per MiB ratio, the strace table the calls per response', () => {
    const [sendfile, readWrite] = fileTargets((lab) => lab.id === '05-event-loop');
    const size = 64 * MiB;
    const wrk = (bytes: number, cpuMs: number) => ({ requests: 10, bytes, durationMs: 1000, errors: 0, timeouts: 0, cpuMs });
    const result = (target: typeof sendfile, serverCpuMs: number, calls: Record<string, number>): TargetResult => ({
      target: target!,
      load: [{ size, connections: 1, wrk: wrk(640 * MiB, 300), serverCpuMs }],
      traced: [{ size, requests: 2, responses: 2, calls: Object.fromEntries(Object.entries(calls).map(([name, n]) => [name, { calls: n, errors: 0 }])) }],
    });
    const results: FilesResults = {
      plan: { sizes: [size], connections: [1], seconds: 1, warmupSeconds: 0, tracedSeconds: 1 },
      tool: 'wrk',
      targets: [result(sendfile, 64, { sendfile: 160, epoll_wait: 100 }), result(readWrite, 256, { pread64: 2048, write: 2050 })],
    };
    const text = renderMarkdown(files, { experiment: 'files', schema: FILES_SCHEMA, stamp: STAMP, labs: [], results });
    expect(text).toContain('- Server CPU per MiB of 64m.bin, read/write against sendfile: 05 event loop read-write (0.40) against 05 event loop sendfile (0.10), 4.0× as much.');
    // The calls per response: sendfile's own, against one pread64 and one write per 64 KiB chunk.
    expect(text).toContain('| 05 event loop sendfile | 64m.bin | 2.00 | 80.0 | 0.00 |');
    expect(text).toContain('| 05 event loop read-write | 64m.bin | 2.00 | 0.00 | 1024 | 0.00 | 1025 |');
    expect(text).toContain('wrk stayed under 85% of a core in every run');
  });

  it('a response\'s bytes are the core\'s own head plus the file', () => {
    expect(responseBytes(4096) - 4096).toBe(Buffer.byteLength(
      'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\nLast-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n\r\n',
    ));
  });
});
