/**
 * The stages the exercises are made of, each a small real-TCP experiment with a bound and a
 * message that names the mistake it catches. The exercises (exercises.ts) pick them in order and
 * give each the words of their own lesson: what to fix, and which README section explains it.
 *
 * Waits are bounded conditions, never fixed sleeps: "the echo came", "the queue holds a client",
 * "no byte arrived for STALL_MS". The bounds are generous, for a busy 2-core machine; a correct
 * server meets each in a small fraction of it.
 */

import { randomBytes } from 'node:crypto';
import { openFds } from '../../harness/processes.js';
import { connectionQueues, listenQueue, tcpRows } from '../../harness/sockets.js';
import { EPOLLET, epollRegistrations, serverSideInode, zombieChildren } from './observe.js';
import { countedBytes, mismatch, type Probe, seconds, StageFailure } from './probe.js';
import { describeEnding, type Stage, type StageContext, START_MS } from './run.js';

/** What a failure tells the learner to do, and where the lab explains why. */
export interface Lesson {
  /** The fix, as an instruction: "close() each client's socket when read() returns 0". */
  readonly fix: string;
  /** A README section: "labs/01-serial/README.md#the-model". */
  readonly see: string;
}

export const told = (lesson: Lesson) => `${lesson.fix} (see ${lesson.see})`;
export const fail = (what: string, lesson: Lesson): never => {
  throw new StageFailure(`${what}: ${told(lesson)}`);
};

/** An echo that does not come in this long has not come. */
const ECHO_MS = 5_000;
/** A transfer with no new byte for this long has stalled. */
const STALL_MS = 3_000;
/** How many clients come and go in the descriptor and zombie stages, and how many at once. */
const CHURN_CLIENTS = 50;
const CHURN_AT_ONCE = 10;
/** A server that listens on another port than PORT this long is told so (it will not listen twice). */
const ELSEWHERE_MS = 2_000;
/**
 * Polling step for the kernel's view of things (/proc). Not less: one read of /proc/net/tcp walks
 * every socket of the machine, tens of milliseconds on a busy one.
 */
const LOOK_MS = 50;

const MiB = 1024 * 1024;

/** Polls `probe` every LOOK_MS until it returns a value, or `timeoutMs` passes (undefined). */
export async function until<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, LOOK_MS));
  }
}

/** The process that listens on the port; a StageFailure when none does any more. */
function listenerPid(context: StageContext): number {
  const listener = context.server.listener();
  if (!listener) throw new StageFailure(`nothing listens on port ${context.port} any more: the listening socket must stay open while the server runs`);
  return listener.pid;
}

// --- Start-up ---------------------------------------------------------------------------------

export function listens(lesson: Lesson): Stage {
  return {
    name: 'listens on PORT',
    boundMs: START_MS + 5_000,
    watchesExit: true,
    run: (context) => waitListening(context, lesson, 'started'),
  };
}

/** Waits for the server to listen on the port, and names what it did instead. */
async function waitListening(context: StageContext, lesson: Lesson, how: string): Promise<void> {
  const { server, port } = context;
  // A server listening elsewhere is told after ELSEWHERE_MS, not at the end of the start-up bound.
  let elsewhereSince: number | undefined;
  const found = await until(() => {
    if (server.listener()) return true;
    if (server.ending && !server.running()) return false;
    elsewhereSince = server.listeningPorts().length > 0 ? (elsewhereSince ?? performance.now()) : undefined;
    return elsewhereSince !== undefined && performance.now() - elsewhereSince > ELSEWHERE_MS ? false : undefined;
  }, context.startMs);
  if (found) return;
  const below = server.lastOutput().trim() ? ' (its output is below)' : '';
  if (found === false && server.ending) fail(`${how} with PORT=${port}, the server ${describeEnding(server)} before listening${below}`, lesson);
  if (server.portTakenByOther()) throw new StageFailure(`another program already listens on port ${port}: run the checker again (it picks a free port)`);
  const elsewhere = server.listeningPorts();
  if (elsewhere.length > 0) {
    fail(`the server listens on port ${elsewhere.join(' and ')}, not on PORT=${port}`, {
      fix: 'take the port from the PORT environment variable (getenv("PORT") in C, process.env.PORT in TypeScript)',
      see: lesson.see,
    });
  }
  fail(`nothing listened on port ${port} within ${seconds(context.startMs)} of the start (the server runs, pid ${server.pgid})`, lesson);
}

// --- Echo -------------------------------------------------------------------------------------

export function echoesLine(lesson: Lesson): Stage {
  return {
    name: 'echoes one line',
    boundMs: 15_000,
    async run(context) {
      const client = await context.open();
      client.send('hello\n');
      await client.expect('hello\n', ECHO_MS, 'a client sent "hello\\n"', told(lesson));
    },
  };
}

export function echoesUntilClose(lesson: Lesson, nextClient: Lesson): Stage {
  return {
    name: 'echoes every message until the client closes, then serves the next',
    boundMs: 25_000,
    async run(context) {
      const client = await context.open();
      client.send('one\n');
      await client.expect('one\n', ECHO_MS, 'a client sent "one\\n"', told(lesson));
      client.send('two\n');
      await client.expect('two\n', ECHO_MS, 'the first message came back; then the same client sent "two\\n"', told(lesson));
      client.end();
      const next = await context.open();
      next.send('three\n');
      await next.expect('three\n', ECHO_MS, 'after a client closed its side (its FIN), a new client sent "three\\n"', told(nextClient));
    },
  };
}

/**
 * Waits until `probe` has `total` bytes, or no byte has come for STALL_MS, or `timeoutMs` passes.
 * Resolves with what came; a stall is said by the caller, which knows what it means.
 */
async function receiveAll(probe: Probe, total: number, timeoutMs: number): Promise<{ stalled: boolean }> {
  const deadline = performance.now() + timeoutMs;
  let last = probe.received().length;
  let lastAt = performance.now();
  for (;;) {
    const now = performance.now();
    await probe.waitFor(() => probe.received().length >= total || probe.received().length !== last, Math.min(STALL_MS - (now - lastAt), deadline - now));
    const length = probe.received().length;
    if (length >= total || probe.ended) return { stalled: false };
    if (length !== last) {
      last = length;
      lastAt = performance.now();
    } else if (performance.now() - lastAt >= STALL_MS || performance.now() >= deadline) {
      return { stalled: true };
    }
  }
}

/**
 * The words for a transfer that did not complete: how much came back, and what the kernel says is
 * left where (unread in the server's socket: it stopped reading; nowhere: it dropped bytes).
 */
function shortfall(context: StageContext, probe: Probe, sent: Buffer, stalledLesson: Lesson, droppedLesson: Lesson): never {
  const got = probe.received();
  if (got.length >= sent.length) fail(`${sent.length} bytes sent; ${mismatch(sent, got.subarray(0, sent.length), probe, 0)}`, droppedLesson);
  const prefixOk = sent.subarray(0, got.length).equals(got);
  if (!prefixOk) fail(`${sent.length} bytes sent; ${mismatch(sent, got, probe, 0)}`, droppedLesson);
  const queues = connectionQueues(context.port, probe.localPort);
  const came = `${sent.length} bytes sent, ${got.length} came back, then ${probe.ended ? 'the server closed the connection' : `nothing for ${seconds(STALL_MS)}`}`;
  if (queues && queues.serverUnread > 0) fail(`${came}, while ${queues.serverUnread} bytes wait unread in the server's socket`, stalledLesson);
  return fail(`${came}, and no byte waits unread in the server's socket: the server read them and never sent them back`, droppedLesson);
}

export function echoesMiB(stalled: Lesson, dropped: Lesson): Stage {
  return {
    name: 'echoes 1 MiB exactly',
    boundMs: 30_000,
    async run(context) {
      const client = await context.open();
      const payload = randomBytes(MiB);
      client.send(payload);
      const { stalled: stall } = await receiveAll(client, payload.length, 20_000);
      if (stall || client.received().length < payload.length) shortfall(context, client, payload, stalled, dropped);
      if (!client.received().subarray(0, payload.length).equals(payload)) shortfall(context, client, payload, stalled, dropped);
    },
  };
}

// --- Closing ----------------------------------------------------------------------------------

/**
 * CHURN_CLIENTS clients connect, are answered (echo: their line; `answered` says how) and leave,
 * CHURN_AT_ONCE at a time.
 */
async function churn(context: StageContext, answered: (client: Probe, index: number) => Promise<void>): Promise<void> {
  for (let first = 0; first < CHURN_CLIENTS; first += CHURN_AT_ONCE) {
    await Promise.all(
      Array.from({ length: Math.min(CHURN_AT_ONCE, CHURN_CLIENTS - first) }, async (_, i) => {
        const client = await context.open(10_000);
        await answered(client, first + i);
        client.end();
      }),
    );
  }
}

/** An echo client of the churn: its line comes back. */
const echoAnswer = (lesson: Lesson) => async (client: Probe, index: number) => {
  client.send(`client ${index}\n`);
  await client.expect(`client ${index}\n`, 15_000, `client ${index + 1} of ${CHURN_CLIENTS} sent a line`, told(lesson));
};

/**
 * A room member of the churn: the server has accepted it (its socket has a file in /proc). The
 * members of a batch share each look at /proc/net/tcp, which costs up to 100 ms on a busy machine.
 */
export const acceptedAnswer = (port: number) => {
  let looked = { at: -Infinity, accepted: new Set<number>() };
  const accepted = (clientPort: number) => {
    if (performance.now() - looked.at > LOOK_MS) {
      const rows = tcpRows(['tcp']).filter((row) => row.localPort === port && row.state !== 'LISTEN' && row.inode !== 0);
      looked = { at: performance.now(), accepted: new Set(rows.map((row) => row.remotePort)) };
    }
    return looked.accepted.has(clientPort) ? true : undefined;
  };
  return async (client: Probe, index: number) => {
    const ok = await until(() => accepted(client.localPort), 10_000);
    if (ok === undefined) throw new StageFailure(`member ${index + 1} of ${CHURN_CLIENTS} connected and the server did not accept it within 10 s`);
  };
};

/**
 * Descriptors back: CHURN_CLIENTS clients come and go, and the listening process must hold no
 * more descriptors than before (a few of slack, for a runtime's own lazily opened ones).
 */
export function closesClients(lesson: Lesson, echoLesson: Lesson, answer?: (context: StageContext) => (client: Probe, index: number) => Promise<void>): Stage {
  return {
    name: `closes each client: descriptors back after ${CHURN_CLIENTS} clients`,
    boundMs: 60_000,
    async run(context) {
      const pid = listenerPid(context);
      const before = openFds(pid);
      await churn(context, answer ? answer(context) : echoAnswer(echoLesson));
      const SLACK = 3;
      const back = await until(() => (openFds(pid) <= before + SLACK ? true : undefined), 3_000);
      if (back) return;
      const after = openFds(pid);
      fail(`${CHURN_CLIENTS} clients came and went, and the server holds ${after - before} more descriptors than before (${before} before, ${after} after)`, lesson);
    },
  };
}

// --- The models' own semantics -----------------------------------------------------------------

/** Serial: while one client is served, the next waits in the kernel's accept queue. */
export function secondClientWaits(lesson: Lesson, nextLesson: Lesson): Stage {
  return {
    name: 'serves one client at a time: the second waits in the accept queue',
    boundMs: 30_000,
    async run(context) {
      const first = await context.open();
      first.send('one\n');
      await first.expect('one\n', ECHO_MS, 'the first client sent "one\\n"', '');
      const second = await context.open();
      second.send('two\n');
      const seen = await until(
        () => (second.received().length > 0 ? 'answered' : (listenQueue(context.port)?.acceptQueueDepth ?? 0) >= 1 ? 'queued' : undefined),
        ECHO_MS,
      );
      if (seen === 'answered') fail(`a second client was answered (${countedBytes(second.received())}) while the first was still connected`, lesson);
      if (seen === undefined) fail('a second client connected while the first was served, and it left the accept queue', lesson);
      first.send('still one\n');
      await first.expect('still one\n', ECHO_MS, 'with the second client queued, the first sent "still one\\n"', '');
      if (second.received().length > 0) fail(`the second client was answered (${countedBytes(second.received())}) while the first was still connected`, lesson);
      first.end();
      await second.expect('two\n', ECHO_MS, 'the first client left; the second, which had sent "two\\n" while it waited', told(nextLesson));
    },
  };
}

/** A client left this long in the accept queue while the first is served has not been accepted. */
const QUEUED_MS = 2_000;

/** Concurrent: a second client is answered while the first stays connected. */
export function servesTwoAtOnce(lesson: Lesson): Stage {
  return {
    name: 'serves a second client while the first stays connected',
    boundMs: 30_000,
    async run(context) {
      const first = await context.open();
      first.send('one\n');
      await first.expect('one\n', 10_000, 'the first client sent "one\\n"', '');
      const second = await context.open();
      second.send('two\n');
      // A server that is not accepting leaves the second client in the accept queue: said as soon
      // as it has stayed there QUEUED_MS, rather than at the end of the echo's bound.
      let queuedSince: number | undefined;
      await until(() => {
        if (second.received().length >= 4 || second.ended) return true;
        queuedSince = (listenQueue(context.port)?.acceptQueueDepth ?? 0) >= 1 ? (queuedSince ?? performance.now()) : undefined;
        return queuedSince !== undefined && performance.now() - queuedSince > QUEUED_MS ? true : undefined;
      }, 10_000);
      if (second.received().length === 0 && queuedSince !== undefined) {
        fail(`while the first client stayed connected, a second sent "two\\n" and has waited ${seconds(QUEUED_MS)} in the accept queue, unaccepted`, lesson);
      }
      await second.expect('two\n', 10_000, 'while the first client stayed connected, a second sent "two\\n"', told(lesson));
      first.send('still one\n');
      await first.expect('still one\n', 10_000, 'then the first sent "still one\\n"', told(lesson));
    },
  };
}

/**
 * Forking: no child is left a zombie once its client has gone. It follows the descriptor stage,
 * whose CHURN_CLIENTS clients came and went (stages always run in order, from the first); one more
 * client gives a server that reaps in its accept loop its turn to.
 */
export function leavesNoZombie(lesson: Lesson, echoLesson: Lesson): Stage {
  return {
    name: `leaves no zombie after ${CHURN_CLIENTS} clients`,
    boundMs: 30_000,
    async run(context) {
      const pid = listenerPid(context);
      const last = await context.open(10_000);
      await echoAnswer(echoLesson)(last, CHURN_CLIENTS);
      last.end();
      // Its own child may not have exited yet (or be the one zombie not yet reaped).
      const reaped = await until(() => (zombieChildren(pid).length <= 1 ? true : undefined), 5_000);
      if (reaped) return;
      const zombies = zombieChildren(pid).length;
      fail(`${CHURN_CLIENTS} clients came and went (the last stage's) and one more, and the server has ${zombies} zombie children (state Z in /proc: exited, never waited for)`, lesson);
    },
  };
}

// --- Signals and restarts -------------------------------------------------------------------

export function exitsOnSigterm(lesson: Lesson): Stage {
  const boundMs = 5_000;
  return {
    name: 'exits on SIGTERM, with a client connected',
    boundMs: boundMs + 10_000,
    watchesExit: true,
    async run(context) {
      const client = await context.open();
      client.send('before\n');
      await client.expect('before\n', ECHO_MS, 'a client sent "before\\n"', '');
      context.server.signalGroup('SIGTERM');
      const gone = await until(() => (context.server.running() ? undefined : true), boundMs);
      if (!gone) fail(`SIGTERM was sent to the server's process group, and it still runs ${seconds(boundMs)} later`, lesson);
      // Our FIN after the server's: its end of the connection now waits in TIME_WAIT, for the next stage.
      await client.waitForEnd(ECHO_MS);
      client.end();
    },
  };
}

export function restartsAtOnce(lesson: Lesson): Stage {
  return {
    name: 'starts again at once on the same port (SO_REUSEADDR)',
    boundMs: START_MS + 15_000,
    watchesExit: true,
    async run(context) {
      const port = context.port;
      // The last stage's connection, closed by the server first: its end sits in TIME_WAIT for a
      // minute, and binding the port again is refused without SO_REUSEADDR.
      const waiting = await until(() => (tcpRows().some((row) => row.localPort === port && row.state === 'TIME_WAIT') ? true : undefined), 5_000);
      if (context.server.running()) await context.server.stop();
      context.restart();
      const how = waiting ? 'started again while a connection of its last run waits in TIME_WAIT on that port' : 'started again';
      await waitListening(context, lesson, how);
      const client = await context.open();
      client.send('again\n');
      await client.expect('again\n', ECHO_MS, 'after the restart, a client sent "again\\n"', '');
    },
  };
}

// --- Event loop -------------------------------------------------------------------------------

/** How many idle clients the event-loop stage holds open at once. */
const IDLE_CLIENTS = 1000;
/**
 * A connect takes this long at most: the kernel completes handshakes on its own while the accept
 * queue has room, so only a server that stopped accepting (its queue full) makes one wait.
 */
const CONNECT_MS = 5_000;

export function manyIdleOneBusy(lesson: Lesson): Stage {
  return {
    name: `answers ${IDLE_CLIENTS.toLocaleString('en')} idle clients plus one busy`,
    boundMs: 60_000,
    async run(context) {
      const idle: Probe[] = [];
      for (let first = 0; first < IDLE_CLIENTS; first += 100) {
        const batch = await Promise.allSettled(Array.from({ length: Math.min(100, IDLE_CLIENTS - first) }, () => context.open(CONNECT_MS)));
        for (const result of batch) if (result.status === 'fulfilled') idle.push(result.value);
        if (idle.length < first + batch.length) fail(`only ${idle.length} of ${IDLE_CLIENTS} clients could connect within ${seconds(CONNECT_MS)}`, lesson);
      }
      const busy = await context.open();
      for (let i = 0; i < 20; i++) {
        busy.send(`busy ${i}\n`);
        await busy.expect(`busy ${i}\n`, ECHO_MS, `with ${IDLE_CLIENTS} idle clients connected, a busy client sent "busy ${i}\\n"`, told(lesson));
      }
      idle.forEach((client, i) => client.send(`idle ${i}\n`));
      const answered = await Promise.all(idle.map((client, i) => client.waitFor(() => client.received().length >= `idle ${i}\n`.length, 15_000)));
      const silent = answered.filter((ok) => !ok).length;
      if (silent > 0) fail(`then each idle client sent a line, and ${silent} of ${IDLE_CLIENTS} got no echo within 15 s`, lesson);
      idle.forEach((client, i) => {
        if (!client.received().equals(Buffer.from(`idle ${i}\n`))) fail(`idle client ${i} sent "idle ${i}\\n" and got ${countedBytes(client.received())}`, lesson);
      });
    },
  };
}

export function registersEdgeTriggered(lesson: Lesson): Stage {
  return {
    name: 'registers clients edge-triggered (EPOLLET)',
    boundMs: 15_000,
    async run(context) {
      const client = await context.open();
      client.send('edge\n');
      await client.expect('edge\n', ECHO_MS, 'a client sent "edge\\n"', '');
      const pid = listenerPid(context);
      const inode = serverSideInode(context.port, client.localPort);
      if (inode === undefined) throw new StageFailure('the client was answered, but the kernel shows no accepted socket for it');
      const masks = epollRegistrations(pid, inode);
      if (masks.length === 0) fail("the client's socket is in none of the server's epoll instances (/proc/PID/fdinfo)", lesson);
      if (!masks.some((mask) => (mask & EPOLLET) !== 0)) {
        fail(`the client's socket is registered with events 0x${masks[0]!.toString(16)}, without EPOLLET (0x80000000)`, lesson);
      }
    },
  };
}

export function burstWithoutStall(stalled: Lesson, dropped: Lesson): Stage {
  return {
    name: 'no stall on a 1 MiB burst',
    boundMs: 30_000,
    async run(context) {
      const client = await context.open();
      const burst = randomBytes(MiB);
      client.send(burst);
      const { stalled: stall } = await receiveAll(client, burst.length, 20_000);
      if (stall || !client.received().subarray(0, burst.length).equals(burst)) shortfall(context, client, burst, stalled, dropped);
    },
  };
}

/** The slow reader's connection is jammed once its queues have not moved for this long. */
const JAMMED_MS = 300;

/** How much the slow reader sends: past any send buffer the kernel gives (4 MiB at most here) plus its own receive buffer. */
const SLOW_READER_BYTES = 8 * MiB;

export function slowReaderGetsEverything(stalled: Lesson, dropped: Lesson): Stage {
  return {
    name: 'a client that stops reading gets every byte (EAGAIN, EPOLLOUT)',
    boundMs: 60_000,
    async run(context) {
      const client = await context.open();
      client.socket.pause();
      const payload = randomBytes(SLOW_READER_BYTES);
      client.send(payload);
      // Not reading until the connection is jammed: the server's queues stop moving, so its writes
      // have met a full send buffer (EAGAIN) and whatever it did about that has happened.
      let last = '';
      let since = performance.now();
      await until(() => {
        const queues = connectionQueues(context.port, client.localPort);
        const now = JSON.stringify(queues);
        if (now !== last || queues === undefined || queues.serverUnsent === 0) since = performance.now();
        last = now;
        return performance.now() - since >= JAMMED_MS ? true : undefined;
      }, 10_000);
      client.socket.resume();
      const { stalled: stall } = await receiveAll(client, payload.length, 30_000);
      if (stall || !client.received().subarray(0, payload.length).equals(payload)) shortfall(context, client, payload, stalled, dropped);
    },
  };
}
