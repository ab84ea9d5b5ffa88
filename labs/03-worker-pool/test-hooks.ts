/**
 * TEST-ONLY: a switch that is unset in normal use. When the environment variable below is set, a
 * job whose payload contains its value throws, so the robust suite (case 11) can show that a
 * failing task fails only its own connection and leaves the pool at full size. Costs one check
 * per job when unset. Kept out of the task itself, which stays the model.
 */

import { jobPayload, type Job } from '../../shared/protocol.js';

export const FAIL_MARKER_ENV = 'IOLAB_TEST_TASK_FAIL_MARKER';

const failMarker = process.env[FAIL_MARKER_ENV] ? Buffer.from(process.env[FAIL_MARKER_ENV]) : undefined;

/** Throws if the test-only switch is set and `job` carries its marker. */
export function failIfMarked(job: Job): void {
  if (!failMarker) return;
  const payload = jobPayload(job);
  if (payload !== undefined && Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(failMarker)) {
    throw new Error(`task failed on purpose (${FAIL_MARKER_ENV} is set: test-only)`);
  }
}
