/**
 * Whether this machine grants a kernel interface a lab needs (`needs` in labs/index.ts), asked
 * the only reliable way: by trying it. io_uring may be missing (a kernel before 5.1, or built
 * without it), switched off (kernel.io_uring_disabled), or refused by a seccomp filter, as
 * container runtimes install. The lab says why in one line and exits 2; harnesses ask here first,
 * so that they skip the lab after saying so in one line, instead of failing obscurely.
 */

import { readFileSync } from 'node:fs';
import type { LabInfo } from './lab.js';

type Libc = typeof import('./libc.js');

/** struct io_uring_params, which io_uring_setup fills in. */
const PARAMS_BYTES = 120;
/** The features lab 07 cannot do without (io_uring_params.features). */
const REQUIRED_FEATURES: readonly [number, string][] = [
  [1 << 0, 'IORING_FEAT_SINGLE_MMAP (5.4)'],
  [1 << 1, 'IORING_FEAT_NODROP (5.5)'],
  [1 << 8, 'IORING_FEAT_EXT_ARG (5.11)'],
];

/** Why io_uring cannot be used here, as one line, or undefined when it can. */
export function ioUringUnavailable(libc: Libc): string | undefined {
  if (process.platform !== 'linux') return 'io_uring is Linux only';
  const params = new Uint8Array(PARAMS_BYTES);
  const fd = libc.io_uring_setup(libc.SYS_io_uring_setup, 2, params);
  if (fd >= 0) {
    libc.close(fd);
    const features = new Uint32Array(params.buffer)[5]!;
    const missing = REQUIRED_FEATURES.filter(([bit]) => !(features & bit)).map(([, name]) => name);
    return missing.length ? `io_uring is too old here: it lacks ${missing.join(', ')}` : undefined;
  }
  const error = libc.errno();
  if (error === libc.ENOSYS) {
    return 'io_uring is unavailable: io_uring_setup returned ENOSYS (a kernel older than 5.1, one built without it, or a seccomp filter that hides it)';
  }
  if (error === libc.EPERM) {
    const disabled = readSysctl('/proc/sys/kernel/io_uring_disabled');
    return disabled && disabled !== '0'
      ? `io_uring is disabled: io_uring_setup returned EPERM and kernel.io_uring_disabled = ${disabled}`
      : 'io_uring is refused: io_uring_setup returned EPERM (a seccomp filter, as container runtimes install, or kernel.io_uring_group)';
  }
  return `io_uring is unavailable: io_uring_setup returned ${libc.errnoName(error)}`;
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

const answers = new Map<string, string | undefined>();

/** Why `lab` cannot run on this machine (its `needs` refused), or undefined when it can. Asked once per process. */
export async function unmetNeed(lab: Pick<LabInfo, 'needs'>): Promise<string | undefined> {
  if (!lab.needs) return undefined;
  if (!answers.has(lab.needs)) {
    const libc: Libc = await import('./libc.js');
    answers.set(lab.needs, ioUringUnavailable(libc));
  }
  return answers.get(lab.needs);
}
