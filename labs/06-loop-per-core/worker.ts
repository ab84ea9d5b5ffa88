/**
 * Lab 06's worker: one event loop on a thread of its own, serving its connections exactly as
 * lab 04 serves all of them (`serveSocket`, the work inline on this loop's thread).
 *
 * Where its connections come from depends on the policy (server.ts says why each exists):
 *   handoff    the main thread accepts and posts each connection's descriptor here;
 *   shared     this loop accepts from the one listening socket every worker shares;
 *   reuseport  this loop accepts from a listening socket of its own.
 *
 * The main thread tells it when to stop; it counts what it served in shared memory, which the
 * main thread reads for the shutdown summary (a count posted at exit could be lost with a crash).
 */

import { closeSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, plural } from '../../shared/log.js';
import { jobPayload, respond, type Job } from '../../shared/protocol.js';
import { RelayedRoom } from '../../shared/room.js';
import { OpenConnections } from '../../shared/server-kit.js';
import { serveSocket } from '../../shared/socket-connection.js';
import { CAP, COUNTERS_PER_WORKER, OPEN, type FromWorker, type ToWorker, type WorkerConfig } from './messages.js';

const config = workerData as WorkerConfig;
const port = parentPort!;
const { index } = config;
const log = createLogger(`06-loop-per-core worker ${index}`, config.quiet);

// Named in the kernel, so `ps -L`, `top -H` and the tests see which thread is which loop.
// /proc/thread-self is this thread; the name is cut at 15 bytes by the kernel.
try {
  writeFileSync('/proc/thread-self/comm', `lab06 worker ${index}`);
} catch {
  // Not Linux, or /proc is not mounted: the loop works the same without a name.
}
const tid = (() => {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return undefined;
  }
})();

/**
 * Test-only: when this variable is set, an echoed chunk containing its value kills this loop with
 * an uncaught exception, so model.test.ts can show that a dying loop closes only its own clients
 * and is replaced. Costs one check per job when unset.
 */
const CRASH_MARKER_ENV = 'IOLAB_TEST_LOOP_CRASH_MARKER';
/**
 * The provoked crash first holds the thread this long, as a loop stuck in a bug does before it
 * dies: connections handed to it meanwhile wait in its message queue and are still in transit
 * when it dies (model.test.ts shows none of them is lost).
 */
const CRASH_STALL_MS = 500;
const crashMarker = process.env[CRASH_MARKER_ENV] ? Buffer.from(process.env[CRASH_MARKER_ENV]) : undefined;

function provokedCrash(job: Job): boolean {
  const payload = jobPayload(job);
  if (!crashMarker || !payload) return false;
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(crashMarker);
}

const connectionsServed = COUNTERS_PER_WORKER * index;
const roundTrips = connectionsServed + 1;
const connections = new OpenConnections();
/**
 * The room is the main thread's (server.ts), because a message must reach the members of
 * every loop. This loop's members are held here; what they say goes to the main thread, and what
 * the room sends comes back once per loop, which writes it to each of its own members.
 */
const room = new RelayedRoom((request) => send({ type: 'room', request }));

function serve(socket: net.Socket): void {
  // --max-conns bounds the whole server: the slot is taken in memory every worker shares, so the
  // cap holds however the policy spreads connections among the loops.
  const cap = Atomics.load(config.slots, CAP);
  if (Atomics.add(config.slots, OPEN, 1) >= cap) {
    Atomics.sub(config.slots, OPEN, 1);
    log.client(`client ${socket.remoteAddress}:${socket.remotePort} refused: ${plural(cap, 'connection')} already open (--max-conns, or the open-file limit)`);
    socket.destroy();
    return;
  }
  Atomics.add(config.counters, connectionsServed, 1n);
  const connection = serveSocket(socket, {
    protocol: config.protocol,
    limits: config.limits,
    noDelay: config.noDelay,
    log,
    // Lab 04's line, with a count: the work runs right here, on this loop's only thread.
    handle: (job) => {
      if (provokedCrash(job)) {
        // Thrown outside serveSocket's care, as a bug in the loop would be: nothing catches it.
        setImmediate(() => {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)), 0, 0, CRASH_STALL_MS);
          throw new Error(`loop crashed on purpose (${CRASH_MARKER_ENV} is set: test-only)`);
        });
      }
      Atomics.add(config.counters, roundTrips, 1n);
      return respond(job, config.work);
    },
    room,
  });
  connections.add(connection);
  void connection.closed.then(() => Atomics.sub(config.slots, OPEN, 1));
}

let server: net.Server | undefined;
if (config.listenFd !== undefined) {
  // allowHalfOpen: after a client's FIN we still owe it the echo of everything it sent.
  server = net.createServer({ allowHalfOpen: true }, serve);
  // Without a listener an 'error' here would end the loop; libuv reports few accept errors (it
  // sheds EMFILE itself and retries the rest), so this is a safeguard, not a path.
  server.on('error', (error) => log.warn(`listening socket: ${error.message}`));
  // The descriptor is already bound and listening; libuv adopts it. The backlog is passed again
  // because Node calls listen(2) once more, with 511 unless told otherwise.
  server.listen({ fd: config.listenFd, backlog: config.backlog }, () => send({ type: 'ready', tid }));
} else {
  // handoff: this loop never listens, so its first stream would be the first client's socket,
  // and with it libuv would open the one spare descriptor each loop keeps for running out of
  // descriptors (its EMFILE defence, a /dev/null). Open it now, with a connection attempt that
  // fails at once (an abstract Unix socket name nobody listens on): the server then starts with
  // every descriptor it will keep, and a count of them taken after one client is the count for good.
  const warmUp = net.connect({ path: '\0lab06-no-such-socket' });
  warmUp.on('error', () => {});
  warmUp.on('close', () => send({ type: 'ready', tid }));
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'connection':
      adopt(message.fd);
      // Said in the same turn as the adoption: no descriptor is ever both this loop's and in transit.
      send({ type: 'adopted', fd: message.fd });
      break;
    case 'stop':
      // The main thread has already shut the listening socket down (server.ts): from then on
      // libuv's accept() fails with EINVAL on every turn of this loop, without a word to us, until
      // the handle is closed here. This message follows the shutdown at once, so that lasts a
      // turn or two of the loop (strace shows a few dozen failed accept4 calls).
      server?.close();
      connections.stopAll();
      // Nothing else holds this thread: it ends once its last connection has closed.
      port.unref();
      break;
    case 'force':
      connections.destroyAll();
      break;
    case 'room':
      room.receive(message.delivery);
      break;
  }
});

/**
 * A connection the main thread accepted (handoff). A thread cannot be sent a net.Socket, but it
 * shares the process's descriptors: wrap the descriptor in a socket of this loop.
 */
function adopt(fd: number): void {
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  } catch (error) {
    // Not a TCP socket after all (a bug): the descriptor is this loop's, so close it here.
    log.warn(`cannot serve descriptor ${fd}: ${error instanceof Error ? error.message : String(error)}`);
    closeSync(fd);
    return;
  }
  serve(socket);
}

function send(message: FromWorker): void {
  port.postMessage(message);
}
