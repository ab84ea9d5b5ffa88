/**
 * The files protocol's one question to the file system, asked the same way by every lab: what is
 * at these path segments under the root? Answered with open descriptors and fstat(2), then handed
 * to the sans-I/O core (shared/files.ts `fileReply`), which decides the response.
 *
 * The checks, in order (the path's own checks, `parseTarget`, have already passed):
 *   1. realpath(3) of root + segments (and a final `/` if the path had one, so that a file named
 *      as a directory, `/a.txt/`, is ENOTDIR): every symlink resolved. A name that does not
 *      exist is 404.
 *   2. The real path must be the root or lie under it, else 403: a symlink that leads outside.
 *   3. open(2) with O_NOFOLLOW (the last component cannot have become a symlink since step 1) and
 *      O_NONBLOCK (a FIFO under the root cannot hang the server in open), then fstat(2): a
 *      directory is answered with its index.html (one level, looked up the same way) or 404;
 *      anything but a regular file is 403.
 *      Out of descriptors (EMFILE, ENFILE) is the server's trouble, not the file's: 503.
 *   4. The open descriptor's own path, /proc/self/fd/N, is checked under the root again: a
 *      directory swapped for a symlink between steps 1 and 3 is caught here, on what was opened.
 *
 * The rules are written once, as steps (`lookUpSteps`): a generator that yields each path it
 * needs opened and stat'ed (step 3) and is resumed with what the lab found. `lookUp` drives it
 * with synchronous calls, as labs 01-06 make them; lab 07 drives the same steps with OPENAT and
 * STATX entries on its ring, resuming it from their completions. Steps 1, 2 and 4 run inside the
 * generator, synchronously in every lab: realpath(3) and a readlink of /proc/self/fd are metadata
 * the kernel's dentry cache answers (io_uring has no readlink or realpath operation). On a cold
 * dentry cache they would wait for the disk; a production server would resolve paths on a thread
 * (Node's fs.promises does), or let the kernel check containment with openat2(RESOLVE_BENEATH).
 */

import { closeSync, constants, fstatSync, openSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { fileReply, type FileFacts, type FileJob } from './files.js';
import { plural, type Logger } from './log.js';

/** The file's remaining bytes to send: the descriptor is the lab's to close (`closeBody`). */
export interface FileBody {
  readonly fd: number;
  /** Next byte of the file to send. */
  position: number;
  /** Bytes still owed: the response's Content-Length minus what has been sent. */
  remaining: number;
  /** Its descriptor is closed (closeBody may be called more than once). */
  closed: boolean;
}

export interface FileAnswer {
  /** The response head (for an error, head and body). */
  readonly head: Buffer;
  /** The file range that follows the head, or undefined (HEAD, an error, an empty range). */
  readonly body: FileBody | undefined;
}

/** `--root`: the directory as realpath(3) names it, or a UserError in one line. */
export function openRoot(dir: string): string {
  let real: string;
  try {
    real = realpathSync.native(dir);
  } catch (error) {
    throw new UserError(`--root ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (!statSync(real).isDirectory()) throw new UserError(`--root ${dir} is not a directory`);
  return real;
}

/** True if `real` (an absolute, symlink-free path) is `root` or under it. */
function underRoot(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Step 3's open(2) flags (every lab's; lab 07 adds O_CLOEXEC, which Node's openSync adds itself). */
export const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What a lookup found: the facts for the response, and the open descriptor when facts.kind is 'file' (else -1). */
export type Found = { readonly facts: FileFacts; readonly fd: number };

/** What fstat(2) or statx(2) said of an open descriptor, as far as the rules ask. */
export interface OpenedStat {
  readonly kind: 'file' | 'directory' | 'other';
  readonly size: number;
  readonly mtimeMs: number;
}

/** The answer to one step: the path opened and stat'ed, or the errno's name (EMFILE, ENOENT, ELOOP...). */
export type Opened = { readonly fd: number; readonly stat: OpenedStat } | { readonly error: string };

/** Steps 1 to 4 for `segments` under `root`, yielding each real path to open and stat (see the top of this file). */
export function* lookUpSteps(root: string, segments: readonly string[], depth = 0, directory = false): Generator<string, Found, Opened> {
  const missing = (reason: string): Found => ({ facts: { kind: 'missing', reason }, fd: -1 });
  const forbidden = (reason: string): Found => ({ facts: { kind: 'forbidden', reason }, fd: -1 });
  const unavailable = (reason: string): Found => ({ facts: { kind: 'unavailable', reason }, fd: -1 });
  let real: string;
  try {
    real = realpathSync.native(path.join(root, ...segments) + (directory ? path.sep : ''));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EMFILE' || code === 'ENFILE') return unavailable(`realpath: ${code}`);
    return code === 'EACCES' || code === 'ELOOP' ? forbidden(`realpath: ${code}`) : missing(`no such file (${code})`);
  }
  if (!underRoot(root, real)) return forbidden('a symlink leads outside the root');
  const opened = yield real;
  if ('error' in opened) {
    const code = opened.error;
    if (code === 'EMFILE' || code === 'ENFILE') return unavailable(`open: ${code}`);
    return code === 'ENOENT' ? missing('vanished before open') : forbidden(`open: ${code}`);
  }
  const { fd, stat } = opened;
  let openedPath: string;
  try {
    openedPath = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    openedPath = real;
  }
  if (!underRoot(root, openedPath)) {
    closeSync(fd);
    return forbidden('what was opened lies outside the root');
  }
  if (stat.kind === 'directory') {
    closeSync(fd);
    if (depth > 0) return missing('index.html is a directory');
    const index = yield* lookUpSteps(root, [...path.relative(root, real).split(path.sep).filter((part) => part !== ''), 'index.html'], 1);
    return index.facts.kind === 'file' ? { facts: { ...index.facts, index: true }, fd: index.fd } : missing('a directory without index.html');
  }
  if (stat.kind !== 'file') {
    closeSync(fd);
    return forbidden('not a regular file');
  }
  return { facts: { kind: 'file', size: stat.size, mtimeMs: stat.mtimeMs, name: real }, fd };
}

/** The steps of one file job: none for a job its path alone refused (parseTarget, a method). */
export function* jobSteps(job: FileJob, root: string): Generator<string, Found, Opened> {
  if (job.refused) return { facts: { kind: 'missing', reason: '' }, fd: -1 };
  return yield* lookUpSteps(root, job.segments, 0, job.directory);
}

/** Step 3 by synchronous calls: open(2), then fstat(2). */
function openAndStat(real: string): Opened {
  let fd: number;
  try {
    fd = openSync(real, OPEN_FLAGS);
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
  const stat = fstatSync(fd);
  return { fd, stat: { kind: stat.isFile() ? 'file' : stat.isDirectory() ? 'directory' : 'other', size: stat.size, mtimeMs: stat.mtimeMs } };
}

/** Drives `steps` with synchronous calls, as labs 01-06 look files up. */
function bySyncCalls(steps: Generator<string, Found, Opened>): Found {
  let step = steps.next();
  while (!step.done) step = steps.next(openAndStat(step.value));
  return step.value;
}

/** Steps 1 to 4 for `segments` under `root`, by synchronous calls; `fd` is -1 unless facts.kind is 'file'. */
export function lookUp(root: string, segments: readonly string[], depth = 0, directory = false): Found {
  return bySyncCalls(lookUpSteps(root, segments, depth, directory));
}

/**
 * One file job, asked and decided: the lab writes `head`, then sends `body` its own way and
 * closes its descriptor. A refusal gets a log line (a warning for 400 and 403: someone tried a
 * path they should not have).
 */
export function answerFile(job: FileJob, root: string, peer: string, log: Logger): FileAnswer {
  return decideFile(job, bySyncCalls(jobSteps(job, root)), peer, log);
}

/** `answerFile`'s second half, for a job whose lookup a lab drove itself (lab 07, through its ring). */
export function decideFile(job: FileJob, found: Found, peer: string, log: Logger): FileAnswer {
  const reply = fileReply(job, found.facts);
  if (reply.reason !== undefined) logRefusal(log, peer, `${peer}: ${job.method} ${JSON.stringify(job.target)} refused, ${reply.status}: ${reply.reason}`, reply.status === 400 || reply.status === 403);
  if (reply.length === 0) {
    if (found.fd >= 0) closeSync(found.fd);
    return { head: reply.head, body: undefined };
  }
  return { head: reply.head, body: { fd: found.fd, position: reply.start, remaining: reply.length, closed: false } };
}

/**
 * Refusal lines one client may print in a second; past it they are counted, and the count is
 * printed in one line at the next refusal logged in a later second. 59 KB of pipelined requests
 * for a forbidden file wrote 158 KB of warnings (which --quiet keeps) before this; a learner
 * trying paths by hand never meets it.
 */
const REFUSAL_LINES_PER_SECOND = 10;

/** Per logger: this second, and each client's refusal lines in it and those not logged. */
const refusals = new WeakMap<Logger, { second: number; peers: Map<string, { lines: number; unlogged: number }> }>();

function logRefusal(log: Logger, peer: string, line: string, warning: boolean): void {
  const second = Math.floor(performance.now() / 1000);
  let state = refusals.get(log);
  if (!state) refusals.set(log, (state = { second, peers: new Map() }));
  if (state.second !== second) {
    for (const [client, { unlogged }] of state.peers) {
      if (unlogged > 0) log.warn(`${client}: ${plural(unlogged, 'more refused request')} not logged (over ${REFUSAL_LINES_PER_SECOND} a second)`);
    }
    state.second = second;
    state.peers.clear();
  }
  let counts = state.peers.get(peer);
  if (!counts) state.peers.set(peer, (counts = { lines: 0, unlogged: 0 }));
  if (++counts.lines > REFUSAL_LINES_PER_SECOND) counts.unlogged++;
  else if (warning) log.warn(line);
  else log.client(line);
}

/** The body's descriptor is closed: sent, failed, or its connection gone. */
export function closeBody(body: FileBody): void {
  if (body.closed) return;
  body.closed = true;
  closeSync(body.fd);
}
