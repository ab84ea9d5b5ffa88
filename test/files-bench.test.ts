/**
 * The files experiment's own logic without running it: wrk's summary and CPU parsed from its
 * output, the targets taken from the registry, calls divided per response's worth of bytes, and a
 * report rendered from a results object alone (what --render-only does with the JSON).
 */

import { describe, expect, it } from 'vitest';
import { fileTargets, MiB, responseBytes, type TargetResult } from '../bench/files/measure.js';
import { FILES_SCHEMA, type FilesResults } from '../bench/files/render.js';
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
  });

  it('targets: every lab that serves files in its first variant, and labs with --copy once per copy', () => {
    const ids = fileTargets().map((t) => t.id);
    expect(ids).toContain('01-serial (sendfile)');
    expect(ids).toContain('01-serial (read-write)');
    expect(ids).toContain('05-event-loop (sendfile)');
    expect(ids).toContain('05-event-loop (read-write)');
    expect(ids).toContain('04-evented');
    expect(fileTargets().find((t) => t.id === '05-event-loop (read-write)')!.args).toEqual(['--mux', 'epoll', '--trigger', 'level', '--copy', 'read-write']);
  });

  it('renders from results alone: the 64 MiB comparison quotes the CPU per MiB ratio and the calls per response', () => {
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
    expect(text).toContain('sendfile cost 0.10 ms of server CPU per MiB, read/write 0.40 ms (4.0×)');
    expect(text).toContain('sendfile made 80.0 sendfile calls');
    expect(text).toContain('read/write made 1024 pread64 and 1025 write calls (1024 chunks of 64 KiB)');
    expect(text).toContain('wrk stayed under 85% of a core in every run');
  });

  it('a response\'s bytes are the core\'s own head plus the file', () => {
    expect(responseBytes(4096) - 4096).toBe(Buffer.byteLength(
      'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\nLast-Modified: Thu, 01 Jan 1970 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n\r\n',
    ));
  });
});
