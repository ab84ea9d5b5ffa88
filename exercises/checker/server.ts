/**
 * The learner's server, as the checker runs it: any command, started by `sh -c` in a process
 * group of its own with `PORT` in its environment, watched from outside through /proc. Whatever it
 * does (hangs, crashes, floods its output, forks, listens elsewhere or never), the checker learns
 * it here in bounded time, and `stop()` ends every process it started: the group is killed, and
 * so is every process the checker ever saw in it, in case one moved to a group of its own.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tcpRows } from '../../harness/sockets.js';

/** The part of the server's output kept for failure messages (the end of it, as a terminal shows). */
const OUTPUT_TAIL_BYTES = 2048;

/**
 * More output than this is a flood: the server writes per byte, or in a loop. A line per client
 * for the busiest stage (a thousand clients) is under 100 KiB; this leaves plenty of room.
 */
export const OUTPUT_FLOOD_BYTES = 8 * 1024 * 1024;

/** How the server ended, when it did. */
export interface Ending {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process as /proc shows it: its group, its state (Z: a zombie) and its parent. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  readonly state: string;
  /** When it started, in clock ticks since boot: with the pid, names one process (pids are reused). */
  readonly started: number;
}

/** Every process on the machine, from one pass over /proc. */
export function processes(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // The command name is in parentheses and may itself hold spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    found.push({ pid: Number(entry), state: fields[0] ?? '?', ppid: Number(fields[1]), pgrp: Number(fields[2]), started: Number(fields[19]) });
  }
  return found;
}

/** The socket inodes `pid` holds, by descriptor number ("socket:[1234]" in /proc/PID/fd). */
export function socketDescriptors(pid: number): Map<number, number> {
  const sockets = new Map<number, number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return sockets;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) sockets.set(Number(fd), Number(match[1]));
    } catch {
      // closed between the listing and the read
    }
  }
  return sockets;
}

/** Every server started and not yet stopped, for a checker interrupted by Ctrl-C. */
const started = new Set<ServerUnderTest>();

/** SIGKILLs every server's process group at once (synchronous: for a signal handler on the way out). */
export function killAllServers(): void {
  for (const server of started) server.signalGroup('SIGKILL');
}

export class ServerUnderTest {
  readonly command: string;
  readonly port: number;
  readonly #child: ChildProcess;
  /** The process group: the pid of `sh`, which leads it (spawn's `detached`). */
  readonly pgid: number;
  /**
   * Every process seen in the group (pid and start time), so that one that left it (setsid) is
   * still stopped, and a pid the system has since given to another program is not.
   */
  readonly #seen = new Map<number, number>();
  #tail = Buffer.alloc(0);
  #outputBytes = 0;
  #ending: Ending | undefined;
  /** Resolves when `sh` (and so, most often, the server itself) has exited. */
  readonly ended: Promise<Ending>;

  constructor(command: string, port: number, cwd: string) {
    this.command = command;
    this.port = port;
    this.#child = spawn('sh', ['-c', command], {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: String(port) },
    });
    this.pgid = this.#child.pid ?? -1;
    started.add(this);
    this.ended = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => resolve((this.#ending = { code, signal })));
      // spawn() itself failed (no sh): as an exit with no status.
      this.#child.on('error', () => resolve((this.#ending = { code: 127, signal: null })));
    });
    const keep = (chunk: Buffer) => {
      this.#outputBytes += chunk.length;
      const joined = Buffer.concat([this.#tail, chunk]);
      this.#tail = joined.subarray(Math.max(0, joined.length - OUTPUT_TAIL_BYTES));
    };
    this.#child.stdout!.on('data', keep);
    this.#child.stderr!.on('data', keep);
  }

  /** Bytes the server has written to stdout and stderr so far. */
  get outputBytes(): number {
    return this.#outputBytes;
  }

  /** How `sh` ended, once it has. */
  get ending(): Ending | undefined {
    return this.#ending;
  }

  /** The end of what the server printed (stdout and stderr as they came), for failure messages. */
  lastOutput(): string {
    return this.#tail.toString('utf8').replace(/^[^\n]*\n/, (first) => (this.#outputBytes > OUTPUT_TAIL_BYTES ? '' : first));
  }

  /** The group's live processes (zombies left out), remembered for stop(). */
  members(): number[] {
    const live = processes().filter((p) => p.pgrp === this.pgid && p.state !== 'Z');
    for (const p of live) this.#seen.set(p.pid, p.started);
    return live.map((p) => p.pid);
  }

  /** True while any process of the group runs. */
  running(): boolean {
    return this.members().length > 0;
  }

  /**
   * The process that holds the socket listening on the port (the server; a forking server's
   * children may hold a copy too: the one nearest the top of the group wins), its descriptor
   * for it and its inode; undefined while nothing of the group listens there.
   */
  listener(): { pid: number; fd: number; inode: number } | undefined {
    const inodes = new Set(tcpRows().filter((row) => row.state === 'LISTEN' && row.localPort === this.port).map((row) => row.inode));
    if (inodes.size === 0) return undefined;
    const live = processes().filter((p) => p.pgrp === this.pgid && p.state !== 'Z');
    for (const p of live) this.#seen.set(p.pid, p.started);
    const holders: { pid: number; ppid: number; fd: number; inode: number }[] = [];
    for (const { pid, ppid } of live) {
      for (const [fd, inode] of socketDescriptors(pid)) if (inodes.has(inode)) holders.push({ pid, ppid, fd, inode });
    }
    // A forked child that kept its copy of the listening socket holds it too: the parent is the one
    // whose own parent does not hold it.
    const top = holders.find((holder) => !holders.some((other) => other.pid === holder.ppid));
    return top && { pid: top.pid, fd: top.fd, inode: top.inode };
  }

  /** True when something listens on the port that is not this server (another program took it). */
  portTakenByOther(): boolean {
    return tcpRows().some((row) => row.state === 'LISTEN' && row.localPort === this.port) && this.listener() === undefined;
  }

  /** The ports the group listens on, for "listens on 8080, not on PORT". */
  listeningPorts(): number[] {
    const held = new Set(this.members().flatMap((pid) => [...socketDescriptors(pid).values()]));
    return [...new Set(tcpRows().filter((row) => row.state === 'LISTEN' && held.has(row.inode)).map((row) => row.localPort))];
  }

  /** Sends `signal` to the whole group, as a terminal's Ctrl-C reaches a whole job. */
  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pgid, signal);
    } catch {
      // the group is gone
    }
  }

  /**
   * Kills every process the server started (the group, and any pid ever seen in it) and waits,
   * at most `timeoutMs`, until none is left. Safe to call more than once.
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.members();
    const deadline = Date.now() + timeoutMs;
    do {
      this.signalGroup('SIGKILL');
      for (const { pid, started, state } of processes()) {
        if (state === 'Z' || this.#seen.get(pid) !== started) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      if (!this.running() && this.#ending) {
        started.delete(this);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    } while (Date.now() < deadline);
  }
}
