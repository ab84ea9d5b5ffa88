/**
 * Runs the measurement in a network namespace of its own when the machine allows it. The kernel
 * keeps ListenOverflows/ListenDrops and the socket tables per network namespace, so on a shared
 * machine another program's overflowing listener (a load test next door) cannot leak into this
 * experiment's counters. Inside, only loopback exists; that is all the experiment uses.
 *
 * Mechanism: `unshare --net` (plus `--map-root-user` when not root) runs `ip link set lo up`
 * and then this same command again, with ISOLATED_ENV set so that it does not recurse.
 */

import { spawn, spawnSync } from 'node:child_process';

const ISOLATED_ENV = 'BACKLOG_NETNS';

export type Network = 'own network namespace' | 'shared with the machine';

/** Where the current process measures. */
export function currentNetwork(): Network {
  return process.env[ISOLATED_ENV] === '1' ? 'own network namespace' : 'shared with the machine';
}

function unshareArgs(command: string[]): string[] {
  const asRoot = process.getuid?.() === 0;
  return ['--net', ...(asRoot ? [] : ['--map-root-user']), '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...command];
}

/**
 * If not yet isolated and a namespace can be made, reruns this command inside one and resolves
 * with its exit code; resolves undefined when the caller should go on here (already inside, or
 * no namespace possible: `why` says so).
 */
export async function rerunIsolated(why: (reason: string) => void): Promise<number | undefined> {
  if (process.env[ISOLATED_ENV] !== undefined) return undefined;
  const probe = spawnSync('unshare', unshareArgs(['true']), { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    why((probe.error?.message ?? probe.stderr.trim().split('\n').at(-1)) || `unshare exited with ${probe.status}`);
    return undefined;
  }
  const child = spawn('unshare', unshareArgs([process.execPath, ...process.execArgv, ...process.argv.slice(1)]), {
    stdio: 'inherit',
    env: { ...process.env, [ISOLATED_ENV]: '1' },
  });
  // Ctrl-C reaches the child too (same process group); it stops its labs and exits. Wait for it.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGTERM', ignore);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 2 : 1)));
  });
}
