/**
 * The one place the labs print. Lines go to stdout, prefixed with the lab's name, so several labs
 * running in several terminals stay tellable apart; `--quiet` drops the per-client lines, which
 * under load would cost more than the echo itself.
 */

import { writeSync } from 'node:fs';

export interface Logger {
  /** True when per-client lines are dropped (--quiet); child processes inherit it. */
  readonly quiet: boolean;
  /** Server-level events: listening, shutting down, a child that crashed. */
  info(message: string): void;
  /** Per-client events: connect and disconnect. Dropped with --quiet. */
  client(message: string): void;
  /** Something went wrong that the operator should see; goes to stderr. */
  warn(message: string): void;
}

export function createLogger(name: string, quiet: boolean): Logger {
  const prefix = `[${name}]`;
  outliveReaders(prefix);
  const out = (message: string) => {
    if (!closed.has(process.stdout)) console.log(`${prefix} ${message}`);
  };
  return {
    quiet,
    info: out,
    client: quiet ? () => {} : out,
    warn: (message) => {
      if (!closed.has(process.stderr)) console.error(`${prefix} ${message}`);
    },
  };
}

/**
 * The same lines, for a worker thread that never returns to its event loop (lab 08's threads sleep
 * in system calls): a worker's console hands its lines to the main thread only when its own loop
 * turns, so they are written to the process's descriptors 1 and 2 here, at once. A line that
 * cannot be written (the reader went away) is dropped, as the main thread's are.
 */
export function createBlockingLogger(name: string, quiet: boolean): Logger {
  const prefix = `[${name}]`;
  const line = (fd: number, message: string) => {
    const bytes = Buffer.from(`${prefix} ${message}\n`);
    for (let offset = 0; offset < bytes.length; ) {
      try {
        offset += writeSync(fd, bytes, offset);
      } catch (error) {
        // A non-blocking pipe that is full: wait for the reader (a millisecond at a time).
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        Atomics.wait(pause, 0, 0, 1);
      }
    }
  };
  return {
    quiet,
    info: (message) => line(1, message),
    client: quiet ? () => {} : (message) => line(1, message),
    warn: (message) => line(2, message),
  };
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** The log's streams that have failed a write: nothing more is written to them. */
const closed = new Set<NodeJS.WriteStream>();

/**
 * A server outlives whoever reads its log. `make lab-04 | head -1` reads the listening line and
 * exits; the server's next line then goes to a pipe with no reader, and Node reports that EPIPE as
 * an 'error' event on process.stdout, which, with nobody listening for it, kills the process with a
 * stack trace, and every client with it. What a user expects is the clients served on and the log
 * lines lost: so the stream is marked closed and written no more, and one line on the other stream
 * (if it is still open) says why the log went quiet. Any write error counts (a terminal that went
 * away gives EIO): none of them is worth a client. Once per process, whichever logger comes first.
 *
 * Lab 02's children inherit the parent's stdout and find it closed too, one per client; the
 * parent, which logs each client before its child does, has said so already, and a line per
 * child would bury it. So a process forked with an IPC channel (only those children are) is quiet.
 */
function outliveReaders(prefix: string): void {
  if (watching) return;
  watching = true;
  const tellsWhy = process.send === undefined;
  const watch = (stream: NodeJS.WriteStream, name: string, other: NodeJS.WriteStream, lost: string) =>
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (closed.has(stream)) return;
      closed.add(stream);
      if (tellsWhy && !closed.has(other)) other.write(`${prefix} ${name} is closed (${error.code ?? error.message}): ${lost} are dropped from here on; the server goes on serving\n`);
    });
  watch(process.stdout, 'stdout', process.stderr, 'log lines');
  watch(process.stderr, 'stderr', process.stdout, 'warnings');
}
let watching = false;

/**
 * 1536 -> "1.5 KiB": byte counts in log lines and reports are read by people. Negative counts
 * (memory that shrank between two weighings) keep their sign and their unit.
 */
export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${Math.round(bytes)} B`;
  if (abs < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * 1 -> "1 connection", 3 -> "3 connections": counts in log lines read as English, whatever the
 * count. `many` is for nouns whose plural is not the noun plus "s" ("children").
 */
export function plural(count: number | bigint, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 || count === 1n ? one : many}`;
}
