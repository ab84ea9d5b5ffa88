/**
 * The files protocol's send path for the labs on `net.Socket` (02, 03, 04, 06, through
 * shared/socket-connection.ts): the head, then the file range, streamed through Node.
 *
 * What Node does underneath, per chunk: `fs.read` runs pread(2) on a libuv thread-pool thread,
 * copying CHUNK_BYTES of the page cache into a JavaScript Buffer (copy 1, kernel to user); back
 * on the loop thread, `socket.write` calls write(2) or writev(2), copying it into the socket's
 * send buffer (copy 2, user to kernel). Every byte crosses the user/kernel boundary twice, and
 * each chunk costs a pread, a write and a hop between threads. Labs 01 and 05 can skip both
 * copies with sendfile(2) (shared/file-send.ts); Node's net has no way to call it.
 *
 * Backpressure: the next chunk is read only once the socket has taken the last one (below its
 * high-water mark, or after 'drain'), so a client that stops reading holds at most one chunk
 * plus the socket's high-water mark of server memory, until the idle timeout closes it.
 */

import { read } from 'node:fs';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { answerFile, closeBody, type FileBody } from './file-open.js';
import type { FileJob } from './files.js';
import type { Logger } from './log.js';

const readAt = promisify(read);

/** Bytes per pread: the size Node's own fs.ReadStream reads with. */
const CHUNK_BYTES = 64 * 1024;

/** Why the connection must close now (it can no longer keep its Content-Length), or undefined. */
export type FileSendFailure = string | undefined;

/** Writes the response to `job` on `socket`; resolves when the socket has taken all of it. */
export async function sendFileOnSocket(socket: Socket, job: FileJob, root: string, peer: string, log: Logger): Promise<FileSendFailure> {
  const { head, body } = answerFile(job, root, peer, log);
  socket.write(head);
  if (!body) return undefined;
  try {
    return await streamBody(socket, body);
  } finally {
    closeBody(body);
  }
}

async function streamBody(socket: Socket, body: FileBody): Promise<FileSendFailure> {
  while (body.remaining > 0) {
    if (socket.destroyed) return undefined;
    if (socket.writableNeedDrain && !(await drained(socket))) return undefined;
    // A fresh buffer per chunk: the socket holds on to each one until the kernel has taken it.
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, body.remaining));
    const { bytesRead } = await readAt(body.fd, chunk, 0, chunk.length, body.position);
    // The file shrank after its size went into Content-Length: the response cannot be finished.
    if (bytesRead === 0) return 'file truncated while being sent';
    body.position += bytesRead;
    body.remaining -= bytesRead;
    if (socket.destroyed) return undefined;
    socket.write(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
  }
  return undefined;
}

/** True on 'drain', false if the socket closed first. */
function drained(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (value: boolean) => () => {
      socket.off('drain', onDrain);
      socket.off('close', onClose);
      resolve(value);
    };
    const onDrain = done(true);
    const onClose = done(false);
    socket.on('drain', onDrain);
    socket.on('close', onClose);
  });
}
