/**
 * Serves one `net.Socket` as a chat member: `serveSocket`'s counterpart for the chat protocol
 * (labs 02, 03, 04 and 06; serveSocket hands chat connections here). The bytes are framed by
 * shared/chat.ts; the room is whatever RoomPort the lab gives (shared/room.ts), local or relayed.
 *
 * Rules, in the order a byte meets them:
 *   1. Bytes read go to the chat session, which frames them into actions; each action goes to
 *      the room (even this member's own error lines, so they keep their place among its replies).
 *   2. The room delivers bytes to this member through `deliver`, which writes them. Node queues
 *      what the kernel does not take; that queue is bounded (chat.ts, OutputLimit): a delivery
 *      that would pass the hard limit, or finds the queue over the soft one for too long, cuts
 *      the member off. It leaves the room at once (the others are
 *      told, and no more bytes are queued for it), gets a final notice behind what is queued, and
 *      is closed when that is sent or after CUT_OFF_GRACE_MS. A slow reader never slows the room.
 *   3. Backpressure on the reader's side: while its own queue is over Node's high-water mark the
 *      socket is not read, so a member that sends but never reads is not read either.
 *   4. Bounds: the idle timeout, the lifetime, as for every protocol.
 *   5. Close: at the client's FIN (or /quit or a line over the limit, after its reply) the member
 *      leaves and our FIN follows what is queued. Shutdown: the member leaves without a word to
 *      the others, gets SHUTDOWN_NOTICE, and is closed once it is sent.
 */

import type { Socket } from 'node:net';
import { ChatSession, CUT_OFF_GRACE_MS, CUT_OFF_NOTICE, cutOffLine, OutputLimit, queueLimits, SHUTDOWN_NOTICE } from './chat.js';
import type { ConnectionLimits } from './lab.js';
import type { Logger } from './log.js';
import type { MemberId, RoomPort } from './room.js';
import { CLOSED, ConnectionRecord } from './rules.js';
import type { Connection } from './socket-connection.js';

export interface ChatServeOptions {
  readonly limits: ConnectionLimits;
  readonly noDelay: boolean;
  readonly log: Logger;
  readonly room: RoomPort;
}

export function serveChatSocket(socket: Socket, options: ChatServeOptions): Connection {
  const { limits, log, room } = options;
  const session = new ChatSession();
  const record = new ConnectionRecord(log, `${socket.remoteAddress}:${socket.remotePort}`);
  const limit = new OutputLimit(queueLimits(limits.maxPendingBytes));
  /** Out of the room: nothing more is read, nothing more is queued. */
  let left = false;
  let grace: NodeJS.Timeout | undefined;

  socket.setNoDelay(options.noDelay);
  socket.setTimeout(limits.idleTimeoutMs, () => fail(CLOSED.idle));
  const lifetime = setTimeout(() => fail(CLOSED.lifetime), limits.maxLifetimeMs);

  // 0 until the join returns (room ids count from 1): a member cut off during its own join
  // (it cannot be, today: writes fail later, not in the call) leaves right after it.
  let id: MemberId = 0;
  id = room.join({
    deliver(bytes) {
      if (left || socket.destroyed) return;
      const slow = limit.check(socket.writableLength, bytes.length, performance.now());
      if (slow) return cutOff(slow);
      socket.write(bytes);
    },
  });

  if (left) room.leave(id);

  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      clearTimeout(lifetime);
      clearTimeout(grace);
      leave(undefined, true);
      record.disconnected(socket.bytesRead, socket.bytesWritten);
      resolve();
    });
  });

  socket.on('data', (chunk: Buffer) => {
    if (left) return;
    const step = session.receive(chunk);
    const actions = step.close ? step.actions.slice(0, -1) : step.actions;
    for (const action of actions) room.act(id, action);
    if (step.close) {
      // The line limit or /quit: its error line or goodbye is the last thing this member hears,
      // written here (a relayed room would answer after the member had left).
      const error = step.actions.at(-1);
      record.closeAfterReplies(false);
      leave(step.why, true);
      if (error?.kind === 'reply') socket.write(Buffer.from(error.text, 'latin1'));
      socket.destroySoon();
      return;
    }
    updateFlow();
  });
  socket.on('end', () => {
    session.end();
    leave(undefined, true);
    socket.end();
  });
  socket.on('drain', () => updateFlow());
  socket.on('error', (error: NodeJS.ErrnoException) => {
    record.fail(error.code ?? error.message);
  });

  function leave(why: string | undefined, announce: boolean): void {
    if (left) return;
    left = true;
    if (id !== 0) room.leave(id, why, announce);
  }

  /** Rule 2: the member fell behind. Out of the room now; the socket gets a moment to send what it has. */
  function cutOff(reason: string): void {
    record.fail(reason);
    log.warn(cutOffLine(record.peer, reason));
    leave('too slow', true);
    socket.write(CUT_OFF_NOTICE);
    socket.destroySoon();
    grace = setTimeout(() => socket.destroy(), CUT_OFF_GRACE_MS);
  }

  function updateFlow(): void {
    if (socket.destroyed || left) return;
    if (socket.writableNeedDrain && !socket.isPaused()) socket.pause();
    else if (!socket.writableNeedDrain && socket.isPaused()) socket.resume();
  }

  function fail(why: string): void {
    if (socket.destroyed) return;
    record.fail(why);
    socket.destroy();
  }

  return {
    peer: record.peer,
    closed,
    stop() {
      if (left) return;
      record.closeAfterReplies(false);
      leave(undefined, false);
      socket.write(SHUTDOWN_NOTICE);
      socket.destroySoon();
    },
    destroy() {
      fail(CLOSED.shutdown);
    },
  };
}
