/**
 * `make probe`: a health probe any lab can answer, as a supervisor would run it (shared/probe.ts).
 * Prints one line and exits 0 when the lab is healthy, 1 when not, 2 for bad flags.
 *
 *   make probe PORT=8080                 send a line, expect its echo within the deadline
 *   make probe PORT=8080 PROBE=tcp       connect only: stays green while the loop is stuck
 *   make probe PORT=8080 PROBE=http      GET /healthz (a lab started with PROTOCOL=http or files)
 *
 * Usage: node dist/labs/probe.js [--host 127.0.0.1] [--port 8080] [--kind echo] [--deadline-ms 1000]
 */

import { hideBin, yargs } from '../shared/yargs.js';
import { DEFAULTS, given, oneOf, strictly } from '../shared/cli.js';
import { exitOnUserError, UserError } from '../shared/errors.js';
import { probe, probeLine, PROBE_KINDS, type ProbeKind } from '../shared/probe.js';

function parseArgs() {
  const args = hideBin(process.argv);
  try {
    return strictly(
      yargs(args)
        .scriptName('node dist/labs/probe.js')
        .usage(
          '$0 [options]\n\nProbes a running lab once and says green or red in one line (exit status 0 or 1). --kind tcp only ' +
            'connects, which the kernel completes even when the lab never accepts; echo sends a line and waits for it back; http ' +
            'asks GET /healthz for liveness and readiness. Through make: `make probe PORT=8080 PROBE=tcp`.',
        )
        .options({
          host: { type: 'string', default: DEFAULTS.host, describe: 'lab address' },
          port: { type: 'number', default: DEFAULTS.port, describe: 'lab port' },
          kind: { type: 'string', default: 'echo', describe: `what to check: ${PROBE_KINDS.join(', ')}` },
          'deadline-ms': { type: 'number', default: 1000, describe: 'the whole exchange must finish within this' },
        })
        .check((a) => {
          if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) throw new UserError(`--port must be a whole number from 1 to 65535, got ${given(a, args, 'port')}`);
          const kind = oneOf(a, args, 'kind', PROBE_KINDS);
          if (kind) throw new UserError(kind);
          const deadline = a['deadline-ms'];
          if (!Number.isInteger(deadline) || deadline < 1 || deadline > 600_000) throw new UserError(`--deadline-ms must be a whole number from 1 to 600000, got ${given(a, args, 'deadline-ms')}`);
          return true;
        }),
    ).parseSync();
  } catch (error) {
    return exitOnUserError('probe')(error);
  }
}

const argv = parseArgs();
const target = { host: argv.host, port: argv.port, deadlineMs: argv['deadline-ms'] };
const result = await probe(argv.kind as ProbeKind, target);
console.log(probeLine(result, target));
process.exitCode = result.ok ? 0 : 1;
