/**
 * Exercise 05 (epoll by hand, level- then edge-triggered): the lab's own model (edge-triggered)
 * and the hand-completed skeletons pass every stage; each known-bad server fails at the stage that
 * names its mistake, with that stage's message.
 */

import { afterAll, describe, it } from 'vitest';
import { Binaries, edited, expectFailedAt, expectPassed, repoFile, runChecker } from './helpers.js';

const SOLUTION = repoFile('test/exercises/solutions/05-epoll.c');
const binaries = new Binaries();
afterAll(() => binaries.remove());

describe('exercise 05: the model passes', () => {
  it('the lab itself (CMD=lab: --trigger edge) passes every stage', async () => {
    expectPassed(await runChecker('05', 'lab'), '05');
  });

  it('the C skeleton, completed by hand, passes every stage', async () => {
    expectPassed(await runChecker('05', binaries.compile('solution', SOLUTION)), '05');
  });

  it('the TypeScript skeleton, completed by hand on the lab\'s bindings, passes every stage', async () => {
    expectPassed(await runChecker('05', `'${process.execPath}' --import tsx test/exercises/solutions/05-epoll.ts`), '05');
  });
});

const MISTAKES: readonly { name: string; source: () => string; stage: number; says: RegExp[] }[] = [
  {
    name: 'no close()',
    source: () => edited(SOLUTION, [['static void drop_client(struct client *client) {\n  close(client->fd);', 'static void drop_client(struct client *client) {']]),
    stage: 4,
    says: [/50 clients came and went, and the server holds (4[89]|5\d) more descriptors than before/, /close\(\) the client's socket/],
  },
  {
    name: 'a blocking server (exercise 01\'s): one client at a time',
    source: () => repoFile('test/exercises/solutions/01-serial.c'),
    stage: 5,
    says: [/(only \d+ of 1000 clients could connect within 5 s|with 1000 idle clients connected, a busy client sent)/, /never block on one client/],
  },
  {
    name: 'still level-triggered',
    source: () => edited(SOLUTION, [['          if (new_client(fd)) watch(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLET);', '          if (new_client(fd)) watch(EPOLL_CTL_ADD, fd, EPOLLIN);']]),
    stage: 6,
    says: [/registered with events 0x[0-9a-f]+, without EPOLLET/, /register clients with EPOLLIN \| EPOLLET/],
  },
  {
    name: 'edge-triggered without the drain loop',
    source: () => edited(SOLUTION, [['      if (send_or_keep(client, buffer, (size_t)got) < 0) break;\n      continue;', '      if (send_or_keep(client, buffer, (size_t)got) < 0) break;\n      return;']]),
    stage: 7,
    says: [/1048576 bytes sent, \d+ came back, then nothing for 3 s, while \d+ bytes wait unread in the server's socket/, /read until read\(\) says EAGAIN \(the drain loop\)/, /#the-stall/],
  },
  {
    name: 'a non-blocking write\'s remainder dropped',
    source: () =>
      edited(SOLUTION, [['  if ((size_t)written < length) {\n    client->pending_start = 0;', '  if (0) {\n    client->pending_start = 0;']]),
    stage: 8,
    says: [/8388608 bytes sent/, /(the server read them and never sent them back|byte \d+ differs)/, /keep the remainder, ask for EPOLLOUT/],
  },
];

// One after another: several at once would hold thousands of the test process's sockets and
// stream megabytes each, and each must reach its own stage before it fails.
describe.each(MISTAKES)('exercise 05, a known-bad server: $name', ({ name, source, stage, says }) => {
  it(`fails at stage ${stage} with the message that names the mistake`, async () => {
    expectFailedAt(await runChecker('05', binaries.compile(name.replace(/\W+/g, '-'), source())), stage, ...says);
  });
});
