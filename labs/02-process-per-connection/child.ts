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
import { serveSocket } from '../../shared/socket-connection.js';
import { CHILD_CONFIG_ENV, type ChildConfig } from './child-config.js';

const config = JSON.parse(process.env[CHILD_CONFIG_ENV] ?? 'null') as ChildConfig | null;
if (!config) {
  console.error('this is lab 02\'s child process; start the lab with `make lab-02`');
  process.exit(2);
}
const log = createLogger(`02-process-per-connection child ${process.pid}`, config.quiet);

process.once('message', (message: unknown, socket: Socket | undefined) => {
  if (message !== 'socket' || !socket) {
    log.warn('expected a socket from the parent; exiting');
    process.exit(1);
  }
  // The IPC channel has done its job; without this it would keep the process alive after the
  // client leaves.
  process.channel?.unref();
  const connection = serveSocket(socket, {
    protocol: config.protocol,
    limits: config.limits,
    log,
    handle: (job) => respond(job, config.work),
  });
  // SIGTERM from the parent's shutdown, SIGINT from Ctrl-C reaching the whole process group:
  // finish this client within the shutdown timeout. Once is enough; the parent escalates.
  const stop = () => {
    connection.stop();
    setTimeout(() => connection.destroy(), config.shutdownTimeoutMs).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // The process ends by itself when the socket closes: nothing else holds the event loop.
});
// Only now may the parent send the socket. This child is an ES module, and Node drops an IPC
// message that arrives while such a module is still loading, before any 'message' listener
// exists (nodejs/node#34785): the client would never be served, and a reset arriving on its
// listener-less socket would crash this child. Found under load by the robust suite (case 9).
process.send?.('ready');
