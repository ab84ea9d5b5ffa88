/** The sysctls that decide what a full accept queue does to a connecting client. */

import { readFileSync } from 'node:fs';
import type { KernelSettings } from './results.js';

export function kernelSettings(): KernelSettings {
  return {
    somaxconn: sysctl('net/core/somaxconn'),
    synLinearTimeouts: sysctl('net/ipv4/tcp_syn_linear_timeouts'),
    synRetries: sysctl('net/ipv4/tcp_syn_retries'),
    synackRetries: sysctl('net/ipv4/tcp_synack_retries'),
    abortOnOverflow: sysctl('net/ipv4/tcp_abort_on_overflow'),
    syncookies: sysctl('net/ipv4/tcp_syncookies'),
  };
}

function sysctl(name: string): number | undefined {
  try {
    return Number(readFileSync(`/proc/sys/${name}`, 'utf8').trim());
  } catch {
    return undefined; // not on this kernel (tcp_syn_linear_timeouts is Linux 6.7+)
  }
}
