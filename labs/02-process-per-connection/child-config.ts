/** What the parent tells each child (lab 02), passed in an environment variable at fork time. */

import type { ConnectionLimits } from '../../shared/lab.js';
import type { ProtocolConfig } from '../../shared/protocol.js';
import type { Deny } from '../../shared/sandbox.js';
import type { WorkSpec } from '../../shared/work.js';

export const CHILD_CONFIG_ENV = 'IOLAB_CHILD_CONFIG';

export interface ChildConfig {
  readonly protocol: ProtocolConfig;
  readonly limits: ConnectionLimits;
  readonly noDelay: boolean;
  /** Calibrated by the parent, so a child does not spend its start-up calibrating. */
  readonly work: WorkSpec;
  readonly shutdownTimeoutMs: number;
  readonly quiet: boolean;
  /** --sandbox: the child narrows its inherited filter to a child's calls, denying the rest this way. */
  readonly sandbox?: Deny;
}
