/**
 * `--copy`, the flag of the labs that choose how a file reaches the socket (shared/file-send.ts),
 * kept apart from the send path so that a thread that sends files (lab 08's) does not load the
 * command line's parser with it.
 */

import type { Options } from 'yargs';
import { oneOf, type LabFlags } from './cli.js';
import { COPY_MODES, type CopyMode, type CopyOptions } from './file-send.js';

/** `--copy`, for the labs that offer it (their main.ts adds it to their flags). */
export const COPY_OPTION = {
  copy: {
    type: 'string',
    default: 'sendfile',
    describe: 'files: how a file reaches the socket. sendfile: inside the kernel, sendfile(2); read-write: pread(2) into a buffer, then write(2)',
  },
} satisfies Record<string, Options>;

export function checkCopy(argv: Record<string, unknown>, args: readonly string[]): string | undefined {
  return oneOf(argv, args, 'copy', COPY_MODES);
}

/** The flags of a lab whose only own flag is `--copy` (lab 01). */
export const copyFlags: LabFlags<CopyOptions> = {
  options: COPY_OPTION,
  check: checkCopy,
  pick: (argv) => ({ copy: argv.copy as CopyMode }),
};
