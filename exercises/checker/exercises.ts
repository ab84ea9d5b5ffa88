/**
 * The exercises, written once: for each, its folder under exercises/, the lab whose model it is
 * (`CMD=lab` runs that lab, which passes every stage), and its stages in order, each with the
 * words of its lesson: the fix, in the terms of the skeleton's TODOs, and the README section that
 * explains it. The Makefile (`make exercise EX=NN`), the README's stage lists and the tests read
 * this list.
 */

import * as chat from './chat-stages.js';
import type { Stage } from './run.js';
import * as echo from './stages.js';
import type { Lesson } from './stages.js';

export interface Exercise {
  /** What `EX=` takes: "01", "02", "05", "chat". */
  readonly id: string;
  /** Its folder under exercises/: skeleton/ (pristine) and work/ (yours). */
  readonly folder: string;
  readonly title: string;
  /**
   * The lab that is this model, and the flags that make it the model this exercise asks for (and
   * let it hold the checker's thousand idle clients plus a few: its --max-conns is 1000).
   */
  readonly lab: { readonly id: string; readonly args: readonly string[] };
  readonly stages: readonly Stage[];
}

const see = (lab: string, section: string) => `labs/${lab}/README.md#${section}`;
const lesson = (fix: string, lab: string, section = 'exercise-write-it-yourself'): Lesson => ({ fix, see: see(lab, section) });

// --- 01: serial ---------------------------------------------------------------------------------

const SERIAL = '01-serial';
const serial = {
  listen: lesson('socket(), SO_REUSEADDR, bind() to 127.0.0.1:PORT, listen() (TODO 1 and 2)', SERIAL, 'the-model'),
  echo: lesson('accept() a client, read() what it sends and write() it back (TODO 3 and 4)', SERIAL, 'the-model'),
  untilEof: lesson('keep reading the same client until read() returns 0: one read() per connection answers only its first message (TODO 4)', SERIAL),
  next: lesson('when read() returns 0 the client has gone: close() its socket and go back to accept() (TODO 4 and 5)', SERIAL),
  partial: lesson('write() may take fewer bytes than asked: write the rest, in a loop, before reading again (TODO 4)', SERIAL),
  stalled: lesson('keep reading until read() returns 0, and write back all that was read (TODO 4)', SERIAL),
  close: lesson('close() each client\'s socket once read() returns 0 (TODO 5)', SERIAL),
  serialModel: lesson('accept() the next client only after the current one has gone: the serial model (this is exercise 01; concurrency is 02 and 05)', SERIAL, 'three-clients-one-served'),
  sigterm: lesson('let SIGTERM end the server: the default action does; a handler must make accept() and read() return (no SA_RESTART, then EINTR) and the loop end (TODO 6)', SERIAL),
  reuse: lesson('set SO_REUSEADDR on the listening socket before bind(), or a restart waits a minute for TIME_WAIT to pass (TODO 1)', SERIAL),
};

const serialStages: readonly Stage[] = [
  echo.listens(serial.listen),
  echo.echoesLine(serial.echo),
  echo.echoesUntilClose(serial.untilEof, serial.next),
  echo.echoesMiB(serial.stalled, serial.partial),
  echo.closesClients(serial.close, serial.echo),
  echo.secondClientWaits(serial.serialModel, serial.next),
  echo.exitsOnSigterm(serial.sigterm),
  echo.restartsAtOnce(serial.reuse),
];

// --- 02: a process per connection ---------------------------------------------------------------

const FORK = '02-process-per-connection';
const fork = {
  listen: lesson('the listening socket is plumbing here (exercise 01); it should not need changing', FORK, 'the-model'),
  echo: lesson('fork() a child for each accepted client; the child serves it with serve() and exits (TODO 1)', FORK, 'the-model'),
  untilEof: lesson('the child serves its client until read() returns 0, then exits (TODO 1)', FORK),
  next: lesson('the parent goes straight back to accept() after fork(): the child has the client (TODO 1)', FORK),
  partial: lesson('serve() must write everything it reads (exercise 01\'s loop)', FORK),
  stalled: lesson('serve() must read until read() returns 0 and write back all it read', FORK),
  concurrent: lesson('fork() a child per client and let the parent go straight back to accept(): no client waits for another (TODO 1)', FORK, 'the-model'),
  close: lesson('after fork() the parent must close() its copy of the client\'s socket: the child has its own (TODO 2)', FORK),
  reap: lesson('reap every child with waitpid(): a SIGCHLD handler that loops on waitpid(-1, &status, WNOHANG), or the same call in the accept loop (TODO 3)', FORK),
  sigterm: lesson('let SIGTERM end the server and its children; a SIGCHLD handler needs SA_RESTART, or accept() returning EINTR must be retried, not fatal (TODO 3)', FORK),
  reuse: lesson('set SO_REUSEADDR on the listening socket before bind(); and the child must close() its copy of the listening socket, or a child still serving keeps the port (TODO 1)', FORK),
};

const forkStages: readonly Stage[] = [
  echo.listens(fork.listen),
  echo.echoesLine(fork.echo),
  echo.echoesUntilClose(fork.untilEof, fork.next),
  echo.echoesMiB(fork.stalled, fork.partial),
  echo.servesTwoAtOnce(fork.concurrent),
  echo.closesClients(fork.close, fork.echo),
  echo.leavesNoZombie(fork.reap, fork.echo),
  echo.exitsOnSigterm(fork.sigterm),
  echo.restartsAtOnce(fork.reuse),
];

// --- 05: epoll, level-triggered then edge-triggered ---------------------------------------------

const LOOP = '05-event-loop';
const loop = {
  listen: lesson('the non-blocking listening socket is plumbing here; register it with epoll_ctl(EPOLL_CTL_ADD, EPOLLIN) (TODO 1)', LOOP, 'the-model'),
  echo: lesson('epoll_wait(); when the listening socket is ready accept() until EAGAIN and register each client for EPOLLIN; when a client is ready read() and write back (TODO 1 to 3)', LOOP, 'the-model'),
  untilEof: lesson('a client stays registered until read() returns 0; each wake-up reads what is there (TODO 3)', LOOP, 'the-model'),
  next: lesson('when read() returns 0, EPOLL_CTL_DEL the client and close() it; the loop goes on with the others (TODO 3)', LOOP, 'the-model'),
  close: lesson('when read() returns 0 (or fails), close() the client\'s socket: close() also takes it out of epoll (TODO 3)', LOOP),
  idle: lesson('never block on one client: every socket non-blocking, and epoll_wait() tells which are ready, so a thousand idle ones cost nothing (TODO 2 and 3)', LOOP, 'poll-against-epoll'),
  edge: lesson('register clients with EPOLLIN | EPOLLET: the second half of the exercise is the edge-triggered loop (TODO 4)', LOOP, 'the-model'),
  drain: lesson('edge-triggered epoll reports a socket once per arrival of bytes: read until read() says EAGAIN (the drain loop), or the bytes left behind are never reported again (TODO 4)', LOOP, 'the-stall'),
  remainder: lesson('a non-blocking write() takes what fits and says EAGAIN for the rest: keep the remainder, ask for EPOLLOUT, write it when the socket has room, and stop reading that client meanwhile (TODO 5)', LOOP),
};

const loopStages: readonly Stage[] = [
  echo.listens(loop.listen),
  echo.echoesLine(loop.echo),
  echo.echoesUntilClose(loop.untilEof, loop.next),
  echo.closesClients(loop.close, loop.echo),
  echo.manyIdleOneBusy(loop.idle),
  echo.registersEdgeTriggered(loop.edge),
  echo.burstWithoutStall(loop.drain, loop.remainder),
  echo.slowReaderGetsEverything(loop.drain, loop.remainder),
];

// --- chat: a room on epoll --------------------------------------------------------------------

const CHAT = 'chat-make-lab-05-protocolchat';
const room = {
  listen: lesson('the listening socket and the epoll loop are plumbing here; they should not need changing', LOOP, CHAT),
  relay: lesson('send each complete line to every member but its sender, as "NAME: line\\n" (TODO 1)', LOOP, CHAT),
  notSender: lesson('skip the sender when relaying its line: it knows what it said (TODO 1)', LOOP, CHAT),
  lines: lesson('keep each member\'s bytes until a \\n completes a line, and relay whole lines only (the framing in the skeleton)', LOOP, CHAT),
  leave: lesson('when a member\'s read() returns 0, take it out of the room and close() its socket (TODO 3)', LOOP, CHAT),
  slow: lesson('a write to one member must never wait: queue what write() does not take, send it on EPOLLOUT, and cut off a member whose queue passes its bound (TODO 2)', LOOP, CHAT),
};

const chatStages: readonly Stage[] = [
  echo.listens(room.listen),
  chat.relaysToOthers(room.relay),
  chat.notToSender(room.notSender),
  chat.wholeLines(room.lines),
  echo.closesClients(room.leave, room.relay, (context) => echo.acceptedAnswer(context.port)),
  chat.slowMemberDoesNotStall(room.slow),
];

export const EXERCISES: readonly Exercise[] = [
  { id: '01', folder: '01-serial', title: 'a serial echo server', lab: { id: SERIAL, args: [] }, stages: serialStages },
  { id: '02', folder: '02-fork', title: 'a process per connection', lab: { id: FORK, args: [] }, stages: forkStages },
  { id: '05', folder: '05-epoll', title: 'epoll by hand, level- then edge-triggered', lab: { id: LOOP, args: ['--mux', 'epoll', '--trigger', 'edge', '--max-conns', '2000'] }, stages: loopStages },
  { id: 'chat', folder: 'chat', title: 'a chat room on epoll', lab: { id: LOOP, args: ['--protocol', 'chat'] }, stages: chatStages },
];

/** The exercise `EX=` names ("1" and "01" alike), or undefined. */
export function findExercise(name: string): Exercise | undefined {
  const wanted = /^\d+$/.test(name) ? name.padStart(2, '0') : name;
  return EXERCISES.find((exercise) => exercise.id === wanted);
}
