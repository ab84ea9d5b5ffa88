/**
 * Exercise 01 (a serial echo server): the lab's own model and the hand-completed skeletons (C and
 * TypeScript) pass every stage; each known-bad server fails at the stage that names its mistake,
 * with that stage's message; and a server that hangs, crashes, floods its output, listens on the
 * wrong port or never listens gets a clear failure, never a hung checker, with every process it
 * started stopped (runChecker checks that after every run).
 */

import { afterAll, describe, expect, it } from 'vitest';
import { Binaries, edited, expectFailedAt, expectPassed, repoFile, runChecker } from './helpers.js';

const SOLUTION = repoFile('test/exercises/solutions/01-serial.c');
const binaries = new Binaries();
afterAll(() => binaries.remove());

describe('exercise 01: the model passes', () => {
  it('the lab itself (CMD=lab) passes every stage', async () => {
    expectPassed(await runChecker('01', 'lab'), '01');
  });

  it('the C skeleton, completed by hand, passes every stage', async () => {
    expectPassed(await runChecker('01', binaries.compile('solution', SOLUTION)), '01');
  });

  it('the TypeScript skeleton, completed by hand on the lab\'s bindings, passes every stage', async () => {
    expectPassed(await runChecker('01', `'${process.execPath}' --import tsx test/exercises/solutions/01-serial.ts`), '01');
  });

  it('the skeletons as given fail at the first stage, naming the TODOs to do', async () => {
    const skeleton = binaries.compile('skeleton', repoFile('exercises/01-serial/skeleton/server.c'));
    expectFailedAt(await runChecker('01', skeleton), 1, /exited with status 0 before listening/, /TODO 1 and 2/, /labs\/01-serial\/README\.md#the-model/);
    const typescript = `'${process.execPath}' --import tsx exercises/01-serial/skeleton/server.ts`;
    expectFailedAt(await runChecker('01', typescript), 1, /exited with status 0 before listening/, /TODO 1 and 2/);
  });
});

/** One mistake each: the solution with one edit, the stage that must catch it, and what its message must say. */
const MISTAKES: readonly { name: string; edits: [string, string][]; stage: number; says: RegExp[] }[] = [
  {
    name: 'one read per connection',
    edits: [['    if (write_all(client, buffer, (size_t)got) < 0) return;', '    write_all(client, buffer, (size_t)got);\n    return;']],
    stage: 3,
    says: [/then the same client sent "two\\n": expected 4 bytes "two\\n", received 0 bytes, then the server closed the connection/, /until read\(\) returns 0/],
  },
  {
    name: 'no close()',
    edits: [['    serve(client);\n    close(client);', '    serve(client);']],
    stage: 5,
    says: [/50 clients came and went, and the server holds (4[89]|5\d) more descriptors than before/, /close\(\) each client's socket/, /#exercise-write-it-yourself/],
  },
  {
    name: 'no SO_REUSEADDR',
    edits: [['  if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt");\n', '']],
    stage: 8,
    says: [/started again while a connection of its last run waits in TIME_WAIT on that port with PORT=\d+, the server exited with status 1 before listening/, /SO_REUSEADDR/],
  },
  {
    name: 'a SIGTERM handler with SA_RESTART, whose flag the blocked read() never lets the loop see',
    edits: [
      ['int main(void) {', 'static volatile sig_atomic_t stopping;\nstatic void on_term(int signo) { (void)signo; stopping = 1; }\n\nint main(void) {'],
      [
        '  signal(SIGPIPE, SIG_IGN);\n',
        '  signal(SIGPIPE, SIG_IGN);\n  struct sigaction action;\n  memset(&action, 0, sizeof action);\n  action.sa_handler = on_term;\n  action.sa_flags = SA_RESTART;\n  sigaction(SIGTERM, &action, NULL);\n',
      ],
      ['  for (;;) {\n    int client', '  while (!stopping) {\n    int client'],
    ],
    stage: 7,
    says: [/SIGTERM was sent to the server's process group, and it still runs 5 s later/, /no SA_RESTART/],
  },
  {
    name: 'serving two at once (a forking server) is not the serial model',
    edits: [['    serve(client);\n    close(client);', '    if (fork() == 0) {\n      serve(client);\n      _exit(0);\n    }\n    close(client);']],
    stage: 6,
    says: [/a second client was answered \(4 bytes "two\\n"\) while the first was still connected/, /#three-clients-one-served/],
  },
  // The server itself misbehaving: each is a clear stage failure, in bounded time.
  {
    name: 'a server that hangs after accept',
    edits: [['    serve(client);\n    close(client);', '    pause();']],
    stage: 2,
    says: [/a client sent "hello\\n": expected 6 bytes "hello\\n", received 0 bytes in 5 s/],
  },
  {
    name: 'a server that crashes on its first client',
    edits: [['    serve(client);\n    close(client);', '    *(volatile int *)0 = client;']],
    stage: 2,
    says: [/the server was killed by SIGSEGV \(a crash: memory used wrongly\) during this stage/],
  },
  {
    name: 'a server that floods its output (a line per byte read)',
    edits: [['    if (write_all(client, buffer, (size_t)got) < 0) return;', '    for (ssize_t i = 0; i < got; i++) printf("read a byte: %d\\n", buffer[i]);\n    if (write_all(client, buffer, (size_t)got) < 0) return;']],
    stage: 4,
    says: [/the server wrote over 8 MiB to its output during this stage/],
  },
  {
    name: 'a server that listens on another port',
    edits: [['  address.sin_port = htons(port);', '  address.sin_port = htons(0);']],
    stage: 1,
    says: [/the server listens on port \d+, not on PORT=\d+: take the port from the PORT environment variable/],
  },
];

// The known-bad servers run at once: each mostly waits out a bound, and none must pass.
describe('exercise 01, a known-bad server', () => {
  it.concurrent.each(MISTAKES)('$name: fails at stage $stage with the message that names the mistake', async ({ name, edits, stage, says }) => {
    expectFailedAt(await runChecker('01', binaries.compile(name.replace(/\W+/g, '-'), edited(SOLUTION, edits))), stage, ...says);
  });
});

it('a server that runs and never listens fails the first stage once its start-up bound has passed', async () => {
  const binary = binaries.compile('never-listens', edited(SOLUTION, [['  if (listen(listener, 128) < 0) die("listen");', '  pause();']]));
  const report = await runChecker('01', binary, { startMs: 2_000 });
  expectFailedAt(report, 1, /nothing listened on port \d+ within 2 s of the start \(the server runs, pid \d+\)/);
  expect(report.results[0]!.ms).toBeLessThan(15_000);
});
