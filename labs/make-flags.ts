/**
 * The `make lab-NN` variables and the flags they become, for labs/run.ts (what the Makefile runs)
 * and for whoever must start a lab as a `make` command line says (test/readme-start-lines.test.ts
 * starts each README's `make lab-NN VAR=...` this way). Data and one pure function: no lab loads.
 */

import { UserError } from '../shared/errors.js';
import { LABS, type LabInfo } from './index.js';

/** The variables every lab takes, and the flag each becomes. */
export const COMMON_VARIABLES: Readonly<Record<string, string>> = {
  HOST: '--host',
  PORT: '--port',
  BACKLOG: '--backlog',
  PROTOCOL: '--protocol',
  WORK_US: '--work-us',
  ROOT: '--root',
};

const OFF = new Set(['', '0', 'no', 'false']);

/**
 * The lab's flags from make's variables (`env`): common ones, the lab's own, QUIET, then ARGS split
 * at spaces. A variable only other labs take (`make lab-04 MUX=poll`) is refused, not ignored: a
 * learner who set it believes two mechanisms were compared when nothing changed.
 */
export function labFlags(info: LabInfo, env: NodeJS.ProcessEnv): string[] {
  const foreign = foreignVariable(info, env);
  if (foreign) throw new UserError(foreign);
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

/** The one line refusing a variable set in `env` that other labs take and this one does not, or undefined. */
function foreignVariable(info: LabInfo, env: NodeJS.ProcessEnv): string | undefined {
  for (const other of LABS) {
    for (const variable of Object.keys(other.makeVariables)) {
      const value = env[variable];
      if (value === undefined || value === '' || variable in info.makeVariables) continue;
      const takers = LABS.filter((lab) => variable in lab.makeVariables).map((lab) => `lab ${lab.id} (make lab-${lab.id.slice(0, 2)} ${variable}=${value})`);
      return `${variable} is a setting of ${takers.join(' and ')}, not of lab ${info.id}: it would change nothing here`;
    }
  }
  return undefined;
}
