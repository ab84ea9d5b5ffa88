/**
 * The `make lab-NN` variables and the flags they become, for labs/run.ts (what the Makefile runs)
 * and for whoever must start a lab as a `make` command line says (test/readme-start-lines.test.ts
 * starts each README's `make lab-NN VAR=...` this way). Data and one pure function: no lab loads.
 */

import type { LabInfo } from './index.js';

/** The variables every lab takes, and the flag each becomes. */
const COMMON_VARIABLES: Readonly<Record<string, string>> = {
  HOST: '--host',
  PORT: '--port',
  BACKLOG: '--backlog',
  PROTOCOL: '--protocol',
  WORK_US: '--work-us',
  ROOT: '--root',
};

const OFF = new Set(['', '0', 'no', 'false']);

/** The lab's flags from make's variables (`env`): common ones, the lab's own, QUIET, then ARGS split at spaces. */
export function labFlags(info: LabInfo, env: NodeJS.ProcessEnv): string[] {
  const flags: string[] = [];
  for (const [variable, flag] of Object.entries({ ...COMMON_VARIABLES, ...info.makeVariables })) {
    const value = env[variable];
    if (value !== undefined && value !== '') flags.push(flag, value);
  }
  if (!OFF.has((env.QUIET ?? '').toLowerCase())) flags.push('--quiet');
  // SANDBOX=1 (any value but 0/no/false): --sandbox; SANDBOX=kill: and a call outside the list kills.
  const sandbox = (env.SANDBOX ?? '').toLowerCase();
  if (!OFF.has(sandbox)) flags.push('--sandbox', ...(sandbox === 'kill' ? ['--sandbox-deny', 'kill'] : []));
  flags.push(...(env.ARGS ?? '').split(/\s+/).filter((arg) => arg !== ''));
  return flags;
}
