/**
 * The system calls the walk makes, each through shared/libc.ts and each returned with the line a
 * C programmer would write for it, so what the learner reads is exactly what ran:
 *
 *   fd = socket(AF_INET, SOCK_STREAM, 0)  → 19
 *   bind(19, (struct sockaddr *)&addr, sizeof addr)  → -1, errno EADDRINUSE (Address already in use)
 *
 * The sockets are blocking, as in a C textbook: connect() returns once the handshake is done,
 * accept() and read() wait for what they need. The walk only calls them when what they wait for
 * is already there (a queued connection, bytes already written), so none of them waits long.
 */

import * as libc from '../../shared/libc.js';

export interface Call {
  /** The call as C would write it, its result, and any note on what it filled in. */
  readonly text: string;
  /** What the call returned (-1 on failure). */
  readonly result: number;
  /** The errno name when it failed, e.g. EADDRINUSE. */
  readonly error: string | undefined;
}

export const HOST = '127.0.0.1';
const SOCKADDR_IN_BYTES = 16;

/** Runs `call` and reads errno at once, before any other call can overwrite it. */
function made(c: string, call: () => number, note?: (result: number) => string | undefined): Call {
  const result = call();
  const errno = result === -1 ? libc.errno() : 0;
  if (result === -1) {
    const name = libc.errnoName(errno);
    return { text: `${c}  → -1, errno ${name} (${libc.strerror(errno)})`, result, error: name };
  }
  const extra = note?.(result);
  return { text: `${c}  → ${result}${extra ? `   ${extra}` : ''}`, result, error: undefined };
}

/** A C string literal for a short text: "hello\n". */
const cString = (text: string) => JSON.stringify(text);

const addressNote = (address: Uint8Array) => {
  const [host, port] = libc.formatSockaddrIn(address).split(':');
  return `${host}, port ${port}`;
};

export function socket(): Call {
  return made('fd = socket(AF_INET, SOCK_STREAM, 0)', () => libc.socket(libc.AF_INET, libc.SOCK_STREAM, 0));
}

export function reuseAddress(fd: number): Call {
  return made(`setsockopt(${fd}, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)`, () =>
    libc.setsockopt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, Int32Array.of(1), 4),
  );
}

export function bind(fd: number, port: number): Call {
  const address = libc.sockaddrIn(HOST, port);
  return made(
    `bind(${fd}, (struct sockaddr *)&addr, sizeof addr)`,
    () => libc.bind(fd, address, SOCKADDR_IN_BYTES),
    () => `addr: ${HOST}, port ${port}`,
  );
}

/** getsockname(): the address the kernel gave the socket. Returns the port as well as the line. */
export function localAddress(fd: number): Call & { readonly port: number } {
  const address = new Uint8Array(SOCKADDR_IN_BYTES);
  const call = made(
    `getsockname(${fd}, (struct sockaddr *)&addr, &len)`,
    () => libc.getsockname(fd, address, Uint32Array.of(SOCKADDR_IN_BYTES)),
    () => `addr: ${addressNote(address)}`,
  );
  return { ...call, port: (address[2]! << 8) | address[3]! };
}

export function listen(fd: number, backlog: number): Call {
  return made(`listen(${fd}, ${backlog})`, () => libc.listen(fd, backlog));
}

export function connect(fd: number, port: number): Call {
  const address = libc.sockaddrIn(HOST, port);
  return made(
    `connect(${fd}, (struct sockaddr *)&addr, sizeof addr)`,
    () => libc.connect(fd, address, SOCKADDR_IN_BYTES),
    () => `addr: ${HOST}, port ${port}`,
  );
}

export function accept(fd: number): Call {
  const peer = new Uint8Array(SOCKADDR_IN_BYTES);
  return made(
    `fd = accept(${fd}, (struct sockaddr *)&peer, &len)`,
    () => libc.accept(fd, peer, Uint32Array.of(SOCKADDR_IN_BYTES)),
    () => `peer: ${addressNote(peer)}`,
  );
}

export function write(fd: number, text: string): Call {
  const bytes = Buffer.from(text);
  return made(`write(${fd}, ${cString(text)}, ${bytes.length})`, () => libc.write(fd, bytes, bytes.length));
}

/** One read() into a small buffer; returns what arrived as well as the line. */
export function read(fd: number): Call & { readonly data: string } {
  const buffer = Buffer.alloc(64);
  const call = made(`read(${fd}, buf, sizeof buf)`, () => libc.read(fd, buffer, buffer.length), (n) =>
    n > 0 ? `buf: ${cString(buffer.toString('utf8', 0, n))}` : undefined,
  );
  return { ...call, data: call.result > 0 ? buffer.toString('utf8', 0, call.result) : '' };
}

export function close(fd: number): Call {
  return made(`close(${fd})`, () => libc.close(fd));
}

const dispositions: Record<number, string> = { [libc.SIG_DFL]: 'SIG_DFL', [libc.SIG_IGN]: 'SIG_IGN' };

/** signal(SIGPIPE, SIG_DFL): undoes Node's start-up SIG_IGN, so a broken pipe kills, as in C. */
export function defaultSigpipe(): Call {
  const previous = libc.signal(libc.SIGPIPE, libc.SIG_DFL);
  const text = `signal(SIGPIPE, SIG_DFL)  → ${dispositions[previous] ?? `handler 0x${previous.toString(16)}`}`;
  return { text, result: previous, error: undefined };
}
