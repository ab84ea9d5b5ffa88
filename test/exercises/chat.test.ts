/**
 * Exercise chat (a room on epoll): the lab's own room (lab 05, PROTOCOL=chat) and the
 * hand-completed skeletons pass every stage; each known-bad room fails at the stage that names
 * its mistake, with that stage's message.
 */

import { afterAll, describe, it } from 'vitest';
import { Binaries, edited, expectFailedAt, expectPassed, repoFile, runChecker } from './helpers.js';

const SOLUTION = repoFile('test/exercises/solutions/chat.c');
const binaries = new Binaries();
afterAll(() => binaries.remove());

describe('exercise chat: the model passes', () => {
  it('the lab itself (CMD=lab: lab 05, --protocol chat) passes every stage', async () => {
    expectPassed(await runChecker('chat', 'lab'), 'chat');
  });

  it('the C skeleton, completed by hand, passes every stage', async () => {
    expectPassed(await runChecker('chat', binaries.compile('solution', SOLUTION)), 'chat');
  });

  it('the TypeScript skeleton, completed by hand on the lab\'s bindings, passes every stage', async () => {
    expectPassed(await runChecker('chat', `'${process.execPath}' --import tsx test/exercises/solutions/chat.ts`), 'chat');
  });
});

const MISTAKES: readonly { name: string; edits: [string, string][]; stage: number; says: RegExp[] }[] = [
  {
    name: 'the sender hears its own line',
    edits: [['    if (members[fd] && members[fd] != from) deliver', '    if (members[fd]) deliver']],
    stage: 3,
    says: [/member a said "only for b [0-9a-f]+" and got its own line back: "user\d+: only for b [0-9a-f]+\\n"/, /skip the sender/],
  },
  {
    name: 'each read() relayed as it came, not cut into lines',
    edits: [['  int fd = member->fd;\n  for (ssize_t i = 0; i < got; i++) {', '  on_line(member, buffer, (size_t)got);\n  return;\n  int fd = member->fd;\n  for (ssize_t i = 0; i < got; i++) {']],
    stage: 4,
    says: [/member b expected one line "NAME: split [0-9a-f]+ in two\\n"/, /until a \\n completes a line/],
  },
  {
    name: 'a member that leaves is never closed',
    edits: [['static void leave(struct member *member) {\n  close(member->fd);', 'static void leave(struct member *member) {']],
    stage: 5,
    says: [/50 clients came and went, and the server holds (4[89]|5\d) more descriptors than before/, /take it out of the room and close\(\) its socket/],
  },
  {
    name: 'blocking writes to every member (TODO 2 not done)',
    edits: [['accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)', 'accept4(listener, NULL, NULL, SOCK_CLOEXEC)']],
    stage: 6,
    says: [/one member reads nothing while another says 8192 lines of 1000 bytes, never more than 512 ahead of a third, which received \d+ of them, then (nothing for 3 s|it was cut off)/, /a write to one member must never wait/],
  },
];

// The known-bad rooms run at once: each mostly waits out a bound, and none must pass.
describe('exercise chat, a known-bad room', () => {
  it.concurrent.each(MISTAKES)('$name: fails at stage $stage with the message that names the mistake', async ({ name, edits, stage, says }) => {
    expectFailedAt(await runChecker('chat', binaries.compile(name.replace(/\W+/g, '-'), edited(SOLUTION, edits))), stage, ...says);
  });
});
