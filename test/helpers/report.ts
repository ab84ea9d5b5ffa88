/** A fixed stamp for results fixtures: reports rendered in tests are compared as text. */

import type { Stamp } from '../../bench/kit/stamp.js';

export const STAMP: Stamp = {
  cpuModel: 'Test CPU',
  cores: 2,
  memoryGiB: 4,
  kernel: 'Linux 6.0',
  node: 'v20.0.0',
  date: '2026-01-01T00:00:00.000Z',
  gitRevision: 'abc123',
  command: 'make test',
  somaxconn: 4096,
  loadAverage1m: 0.1,
};
