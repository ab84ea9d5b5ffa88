/**
 * The start-up of the labs that make their own system calls: the platform check, the koffi
 * bindings (shared/libc.ts, loaded only here, so that nothing else pays for them), what the lab's
 * mechanism needs of the machine, the listening socket (shared/listener.ts), the loop, and the
 * graceful close (shared/server-kit.ts). One copy of the steps, so every by-hand lab starts, says
 * what it lacks, and shuts down the same way.
 */

import { UserError } from '../errors.js';
import type { RunningServer, ServerOptions } from '../lab.js';
import { openListener, resolveIPv4 } from '../listener.js';
import { gracefulClose } from '../server-kit.js';
import type { Ground } from './server.js';

type Libc = typeof import('../libc.js');

/** What startByHand needs of a lab. */
export interface HandLab<Extra extends object> {
  /** "lab 05": the name its one-line errors give. */
  readonly name: string;
  /** What it calls directly, for the line a non-Linux machine gets: "epoll and the socket API". */
  readonly calls: string;
  /** False: the kernel's accept queue is the only queue, nobody is turned away (lab 01). */
  readonly turnAway: boolean;
  /** A blocking listening socket: the lab's threads sleep in accept() (lab 08). */
  readonly blocking?: boolean;
  /** Why this machine cannot run the lab's mechanism (one line), before anything is bound; undefined when it can. */
  unmet?(libc: Libc, options: ServerOptions & Extra): string | undefined;
  /** The server, on its listening socket; the lab's mechanism is set up here. */
  build(ground: Ground<Extra>): HandRunning;
}

/** The server kit/server.ts builds, as startByHand drives it. */
export interface HandRunning {
  run(): Promise<void>;
  /** Resolves once the server is ready to serve (lab 08: its threads sleep in accept()); the listening line waits for it. */
  readonly ready?: Promise<void>;
  stopAccepting(): void;
  finishAll(): void;
  force(): void;
}

export async function startByHand<Extra extends object>(lab: HandLab<Extra>, options: ServerOptions & Extra): Promise<RunningServer> {
  if (process.platform !== 'linux') throw new UserError(`${lab.name} needs Linux: it calls ${lab.calls} directly`);
  const libc: Libc = await import('../libc.js');
  const unmet = lab.unmet?.(libc, options);
  if (unmet) throw new UserError(unmet);
  const host = await resolveIPv4(options, lab.name);
  const { fd: listenFd, port } = openListener(libc, { ...options, host, blocking: lab.blocking === true });
  let server: HandRunning;
  try {
    server = lab.build({ libc, listenFd, options, turnAway: lab.turnAway, blocking: lab.blocking === true });
  } catch (error) {
    libc.close(listenFd);
    throw error;
  }
  const served = server.run();
  if (server.ready) await Promise.race([server.ready, served]);
  const close = gracefulClose(
    {
      stopAccepting: () => server.stopAccepting(),
      finish: () => server.finishAll(),
      force: () => server.force(),
      drained: () => served,
    },
    options.shutdownTimeoutMs,
  );
  return { address: { host, port }, close };
}
