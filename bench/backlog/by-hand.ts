/**
 * The report's last section: how to see the same thing by hand with nc, ss and strace. The
 * transcripts below were observed by hand on this project's machine (an example, not part of any
 * run); the `ss` lines the report quotes from the run itself come from the JSON.
 */

import { seconds } from './format.js';
import type { BacklogReport } from './types.js';

/** When and how the transcripts below were taken. */
const OBSERVED = 'observed by hand on 2026-11-21 on the machine in the header, Linux 6.18';

export function BY_HAND(report: BacklogReport): string {
  const serial = report.runs.find((r) => r.kind === 'model' && r.lab === '01-serial');
  const snapshot = serial?.ss.find((s) => s.command.startsWith('ss -ltn'));
  const fromRun = snapshot
    ? [
        `For comparison, the measured run above: \`ss\` printed this for the serial lab at ${seconds(snapshot.atMs)}, ` +
          `while client 1 held its connection and clients 2–${report.settings.clients} waited:`,
        '',
        '```',
        `$ ${snapshot.command}`,
        snapshot.output,
        '```',
        '',
      ]
    : [];
  return [
    '## See it by hand',
    '',
    'Four terminals, the serial lab with a backlog of 1, and `nc`, `ss` and `strace` ' +
      '(on Debian or Ubuntu: `apt-get update && apt-get install -y netcat-openbsd iproute2 strace`). ' +
      `The transcripts are examples, ${OBSERVED}; ports and pids differ from run to run.`,
    '',
    '**Terminal 1**: the server. Its listening line gives the pid for strace.',
    '',
    '```',
    '$ make lab-01 BACKLOG=1',
    'node_modules/.bin/tsc -p tsconfig.json',
    'exec node dist/labs/01-serial/main.js   --backlog 1',
    '[01-serial] listening on 127.0.0.1:8080 (model: serial, one client at a time; the rest wait in the kernel backlog; pid 26050)',
    '[01-serial] client 127.0.0.1:39064 connected',
    '```',
    '',
    '**Terminal 2**: client A. It is accepted, and every line comes straight back.',
    '',
    '```',
    '$ nc 127.0.0.1 8080',
    'hello from terminal 2',
    'hello from terminal 2',
    '```',
    '',
    '**Terminal 3**: client B. `nc` connects at once (the kernel completed the handshake), but nothing comes back: ' +
      'no accept() has been called for this connection, so the server does not even know it exists.',
    '',
    '```',
    '$ nc 127.0.0.1 8080',
    'hello from terminal 3',
    '```',
    '',
    '**Terminal 4**: the kernel\'s view. Recv-Q of the LISTEN line counts the connections waiting for accept(), Send-Q is the backlog. ' +
      'Two more clients (`-d`: they send nothing) fill the queue: with backlog 1 it takes two (backlog + 1), so the last client\'s SYN ' +
      'is dropped and it stays in SYN-SENT.',
    '',
    '```',
    "$ ss -ltn 'sport = :8080'",
    'State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
    'LISTEN 1      1          127.0.0.1:8080      0.0.0.0:*',
    '$ nc -d 127.0.0.1 8080 & nc -d 127.0.0.1 8080 &',
    "$ ss -ltn 'sport = :8080'; ss -tn 'dport = :8080'",
    'State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess',
    'LISTEN 2      1          127.0.0.1:8080      0.0.0.0:*',
    'State    Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess',
    'ESTAB    0      0          127.0.0.1:36858    127.0.0.1:8080',
    'SYN-SENT 0      1          127.0.0.1:36862    127.0.0.1:8080',
    'ESTAB    0      0          127.0.0.1:39064    127.0.0.1:8080',
    'ESTAB    0      0          127.0.0.1:39072    127.0.0.1:8080',
    '```',
    '',
    'Now watch the server\'s system calls (`-p` takes the pid from the listening line; the `grep` hides the idle ' +
      '`accept4(...) = -1 EAGAIN` the server makes between short polls, so that Ctrl-C works) and press Ctrl-C in terminal 2. ' +
      'While client A was served there was no accept4() at all. Now the server reads client A\'s end of stream (`read` returns 0), ' +
      'accepts client B from the queue, reads the line the kernel had kept for it since it was typed, and echoes it: ' +
      'terminal 3 finally shows `hello from terminal 3` a second time.',
    '',
    '```',
    "$ strace -f -e trace=accept4,accept,read,write -p 26050 2>&1 | grep -v EAGAIN",
    'strace: Process 26050 attached with 11 threads',
    '[pid 26050] read(21, "", 65536)         = 0',
    '[pid 26050] write(19, "[01-serial] client 127.0.0.1:390"..., 100) = 100',
    '[pid 26050] accept4(20, {sa_family=AF_INET, sin_port=htons(39072), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC|SOCK_NONBLOCK) = 21',
    '[pid 26050] write(19, "[01-serial] client 127.0.0.1:390"..., 45) = 45',
    '[pid 26050] read(21, "hello from terminal 3\\n", 65536) = 22',
    '[pid 26050] write(21, "hello from terminal 3\\n", 22) = 22',
    '```',
    '',
    'Fd 19 is the log (stdout), 20 the listening socket, 21 the client being served. A few seconds later `ss` shows the ' +
      'former SYN-SENT client ESTAB too: accepting client B freed a place in the queue, and that client\'s next SYN retransmit found it.',
    '',
    ...fromRun,
    'Against labs 02, 03 and 04 the same steps show Recv-Q 0 and an echo in every terminal at once: those servers call ' +
      'accept() as soon as a connection arrives (strace on lab 04 shows `accept4(...) = 21`, then `= 22` for the second `nc`, ' +
      'and reads and writes on both). Each lab\'s README has the commands under "Try it with nc".',
    '',
  ].join('\n');
}
