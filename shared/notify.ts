/**
 * sd_notify(3) without libsystemd: when systemd starts a lab (deploy/iolab@.service, Type=notify),
 * it passes an AF_UNIX datagram socket's path in $NOTIFY_SOCKET, and the lab sends it plain-text
 * states. Node has no datagram AF_UNIX socket, so this is one through the koffi bindings.
 *
 *   READY=1     the lab listens: `systemctl start` returns, and a unit ordered after it may start;
 *   STOPPING=1  shutdown began: readiness is gone while open connections drain;
 *   WATCHDOG=1  sent at half of $WATCHDOG_USEC by a timer on the main thread's event loop, so a
 *               loop stuck in work (--work-us, a blocking call) stops sending it and systemd
 *               restarts the lab. A TCP connect probe would stay green: the kernel completes
 *               handshakes into the accept queue whether or not the loop ever accepts them.
 * Catch: in labs 03 and 06 the work runs on other threads; the watchdog vouches for the main
 * thread's loop only (a stuck worker is the pool's or the balancer's to notice).
 *
 * Without $NOTIFY_SOCKET every call here does nothing.
 */

type Libc = typeof import('./libc.js');

export interface Notifier {
  send(state: string): void;
  /** Starts WATCHDOG=1 at half of $WATCHDOG_USEC, if systemd asked for it (for this pid). */
  startWatchdog(): void;
  close(): void;
}

/** struct sockaddr_un: family, then the path; "@name" is Linux's abstract namespace (a leading NUL). */
export function sockaddrUn(path: string): { address: Uint8Array; length: number } {
  const bytes = Buffer.from(path.startsWith('@') ? `\0${path.slice(1)}` : path);
  if (bytes.length > 107) throw new Error(`NOTIFY_SOCKET is longer than sockaddr_un allows: ${path}`);
  const address = new Uint8Array(110);
  new Uint16Array(address.buffer, 0, 1)[0] = 1; // AF_UNIX, host order
  address.set(bytes, 2);
  // An abstract name's length is exact; a path's includes its NUL.
  return { address, length: 2 + bytes.length + (path.startsWith('@') ? 0 : 1) };
}

/**
 * The socket to systemd, opened now (before --sandbox: afterwards `socket` is refused), or
 * undefined when no service manager asked. Its one call from then on is sendto.
 */
export async function openNotifier(env: NodeJS.ProcessEnv = process.env): Promise<Notifier | undefined> {
  const target = env.NOTIFY_SOCKET;
  if (!target) return undefined;
  const libc: Libc = await import('./libc.js');
  const fd = libc.socket(libc.AF_UNIX, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC, 0);
  if (fd < 0) throw libc.callError('socket(AF_UNIX)', libc.errno());
  const { address, length } = sockaddrUn(target);
  let timer: NodeJS.Timeout | undefined;
  const send = (state: string) => {
    const message = Buffer.from(state);
    // A lost datagram is systemd's to time out on; a lab does not stop serving over it.
    libc.sendto(fd, message, message.length, 0, address, length);
  };
  return {
    send,
    startWatchdog() {
      const usec = Number(env.WATCHDOG_USEC);
      const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
      if (!Number.isFinite(usec) || usec <= 0 || !forUs) return;
      timer = setInterval(() => send('WATCHDOG=1'), Math.max(1, usec / 2000));
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      libc.close(fd);
    },
  };
}
