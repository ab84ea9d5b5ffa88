/**
 * Lab 02's child: serves exactly one client, then exits.
 *
 * Started by the parent as plain `node` on compiled JavaScript: a TypeScript loader here would
 * triple the start-up that every connection pays, and the lab would measure the loader instead
 * of the model. It imports only what serving needs, for the same reason.
 */

import type { Socket } from 'node:net';
import { createLogger } from '../../shared/log.js';
import { respond } from '../../shared/protocol.js';
import { RelayedRoom, type RoomDelivery, type RoomRequest } from '../../shared/room.js';
import { serveSocket, type SocketConnection } from '../../shared/socket-connection.js';
import { CHILD_CONFIG_ENV, type ChildConfig } from './child-config.js';

const config = JSON.parse(process.env[CHILD_CONFIG_ENV] ?? 'null') as ChildConfig | null;
if (!config) {
  console.error('this is lab 02\'s child process; start the lab with `make lab-02`');
  process.exit(2);
}
const log = createLogger(`02-process-per-connection child ${process.pid}`, config.quiet);

// --sandbox: this process runs under the parent's filter, which had to allow starting a Node
// process (execve and all of start-up). Now that it has started, it adds a narrower one of its
// own; the kernel applies the strictest of the two. Loaded only when asked for: the bindings cost
// start-up time that every connection would pay.
if (config.sandbox) {
  const [{ childAllowList, installSandbox }, { labInfo }] = await Promise.all([import('../../shared/sandbox.js'), import('../index.js')]);
  try {
    await installSandbox(childAllowList(labInfo('02-process-per-connection'), config.protocol)!, config.sandbox);
  } catch (error) {
    log.warn(`cannot narrow its sandbox, so it serves no one: ${(error as Error).message}`);
    process.exit(1);
  }
}

let socket: Socket | undefined;
let connection: SocketConnection | undefined;
let stopping = false;

/**
 * The room: this process holds one member, and the room is the parent's (server.ts): a child shares
 * no memory with its siblings, so what its client says goes up the IPC channel, and the parent
 * sends each message down the channel of every other child, which writes it to its own client.
 */
export type RoomMessage = { readonly type: 'room'; readonly request: RoomRequest } | { readonly type: 'room'; readonly delivery: RoomDelivery };
const room = new RelayedRoom((request) => process.send?.({ type: 'room', request } satisfies RoomMessage));
process.on('message', (message: RoomMessage | string) => {
  if (typeof message === 'object' && message !== null && 'delivery' in message) room.receive(message.delivery);
});

/**
 * The parent's shutdown (SIGTERM; SIGINT if someone sends one): finish this client within the
 * shutdown timeout. The signal may come before the socket does (the parent hands a client over
 * during shutdown too), so it is noted here and applied when the socket arrives. Once is enough;
 * the parent escalates to SIGKILL at its deadline.
 */
function stop(): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => connection?.destroy(), config!.shutdownTimeoutMs).unref();
  finishAfterFirstBytes();
}

/**
 * Tells the connection to take nothing new. Not before its first bytes are read: a client
 * accepted just before the shutdown has its request (or its stream) waiting in the kernel, and a
 * conversation that waits for requests and had read nothing would count as idle and close without
 * answering it.
 */
function finishAfterFirstBytes(): void {
  if (!socket || !connection) return;
  const served = connection;
  // A stream or a room member is told at once: it has no request in flight to wait for.
  if (socket.bytesRead > 0 || !served.waitsForRequests) served.stop();
  else socket.once('data', () => served.stop());
}

process.once('message', (message: unknown, received: Socket | undefined) => {
  if (message !== 'socket' || !received) {
    log.warn('expected a socket from the parent; exiting');
    process.exit(1);
  }
  socket = received;
  connection = serveSocket(socket, {
    protocol: config.protocol,
    limits: config.limits,
    noDelay: config.noDelay,
    log,
    handle: (job) => respond(job, config.work),
    room,
  });
  if (stopping) finishAfterFirstBytes();
  // The process ends by itself when the socket closes: the IPC channel, which holds the event
  // loop meanwhile, is let go then. Not before: a chat member held by the relay's flow control
  // (shared/room.ts) has a paused socket, which holds nothing, and waits for the parent's word.
  void connection.closed.then(() => process.channel?.unref());
});
// Installed before 'ready': from then on the parent may signal this child (see server.ts).
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// Only now may the parent send the socket. This child is an ES module, and Node drops an IPC
// message that arrives while such a module is still loading, before any 'message' listener
// exists (nodejs/node#34785): the client would never be served, and a reset arriving on its
// listener-less socket would crash this child. Found under load by the robust suite (case 9).
// A parent that died meanwhile (the OOM killer's pick under a memory cap) closed the channel:
// one line and out, not an unhandled 'error' with its stack.
process.send?.('ready', undefined, undefined, (error) => {
  if (!error) return;
  log.warn(`the parent is gone (${error.message}); exiting before serving anyone`);
  process.exit(1);
});
