/**
 * Exercise 02 (a process per connection): the lab's own model and the hand-completed skeletons
 * (C with fork(), TypeScript with posix_spawn) pass every stage; each known-bad server fails at
 * the stage that names its mistake, with that stage's message.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { Binaries, edited, expectFailedAt, expectPassed, repoFile, runChecker } from './helpers.js';

const SOLUTION = repoFile('test/exercises/solutions/02-fork.c');
const binaries = new Binaries();
afterAll(() => binaries.remove());

describe('exercise 02: the model passes', () => {
  it('the lab itself (CMD=lab) passes every stage', async () => {
    expectPassed(await runChecker('02', 'lab'), '02');
  });

  it('the C skeleton, completed by hand, passes every stage', async () => {
    expectPassed(await runChecker('02', binaries.compile('solution', SOLUTION)), '02');
  });

  // Up to the zombies (posix_spawn, close, waitpid: the bindings this skeleton adds); SIGTERM and
  // the restart are the same for every server, and the C solution passes them.
  it('the TypeScript skeleton, completed by hand on the lab\'s bindings, passes stages 1 to 7', async () => {
    const report = await runChecker('02', `'${process.execPath}' --import tsx test/exercises/solutions/02-fork.ts`, { upTo: 7 });
    expect(report.results.map((result) => result.failure ?? 'ok')).toEqual(Array(7).fill('ok'));
  });
});

const MISTAKES: readonly { name: string; source: () => string; stage: number; says: RegExp[] }[] = [
  {
    name: 'the skeleton as given: serial, no fork() yet',
    source: () => repoFile('exercises/02-fork/skeleton/server.c'),
    stage: 5,
    says: [/while the first client stayed connected, a second sent "two\\n" and has waited 2 s in the accept queue, unaccepted/, /fork\(\) a child per client/],
  },
  {
    name: 'the parent keeps its copy of each client\'s socket',
    source: () => edited(SOLUTION, [['    if (child < 0) perror("fork");\n    close(client);', '    if (child < 0) perror("fork");']]),
    stage: 6,
    says: [/50 clients came and went, and the server holds (4[89]|5\d) more descriptors than before/, /the parent must close\(\) its copy/],
  },
  {
    name: 'children never reaped',
    source: () => edited(SOLUTION, [['  if (sigaction(SIGCHLD, &reaper, NULL) < 0) die("sigaction");\n', '']]),
    stage: 7,
    says: [/50 clients came and went \(the last stage's\) and one more, and the server has (5\d) zombie children/, /waitpid\(\)/],
  },
];

// The known-bad servers run at once: each mostly waits out a bound, and none must pass.
describe('exercise 02, a known-bad server', () => {
  it.concurrent.each(MISTAKES)('$name: fails at stage $stage with the message that names the mistake', async ({ name, source, stage, says }) => {
    expectFailedAt(await runChecker('02', binaries.compile(name.replace(/\W+/g, '-'), source())), stage, ...says);
  });
});
