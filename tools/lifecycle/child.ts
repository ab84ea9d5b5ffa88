/**
 * The child process of the walk's two pitfalls: what it does could kill it, or needs to be a new
 * process to mean anything, so the walk (walk.ts) starts it and reports how it ended.
 *
 *   child.js write [--default-sigpipe]   write() to fd 3, a socket whose peer has gone
 *   child.js restart PORT [--reuseaddr]  socket(), bind() to PORT, listen(): a server restarting
 *
 * Each call's C line goes to stdout as it is made (stdout is a pipe, which Node writes
 * synchronously on Linux), so a call that never returns still has its line printed.
 * Not a user-facing command: the walk is its only caller.
 */

import * as calls from './calls.js';

/** The descriptor the walk passes the broken connection in (the first after stdin, stdout, stderr). */
const INHERITED_FD = 3;
const BACKLOG = 16;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function writeAfterPeerGone(defaultSigpipe: boolean): void {
  if (defaultSigpipe) say(calls.defaultSigpipe().text);
  // With SIGPIPE's default disposition the process dies inside write(): say what it calls first.
  if (defaultSigpipe) say(`write(${INHERITED_FD}, "still there?\\n", 13)  …`);
  say(calls.write(INHERITED_FD, 'still there?\n').text);
}

function restart(port: number, reuseAddress: boolean): void {
  const socket = calls.socket();
  say(socket.text);
  if (reuseAddress) say(calls.reuseAddress(socket.result).text);
  const bound = calls.bind(socket.result, port);
  say(bound.text);
  if (bound.result === 0) say(calls.listen(socket.result, BACKLOG).text);
  say(calls.close(socket.result).text);
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'write') writeAfterPeerGone(rest.includes('--default-sigpipe'));
else if (mode === 'restart' && rest[0] !== undefined) restart(Number(rest[0]), rest.includes('--reuseaddr'));
else throw new Error(`child.ts: unknown invocation ${JSON.stringify(process.argv.slice(2))}`);
