/**
 * Loopback source addresses for many client connections. A client's ephemeral port is chosen per
 * source address, so one address gives at most as many connections to one server port as the
 * ephemeral range holds (32768-60999 by default: 28,232). The C load generator spreads its
 * connections over 127.0.0.2 and up (`--sources K`: connection i from 127.0.0.(2 + i % K)); every
 * address of 127.0.0.0/8 is local on Linux, so they need no set-up. This file says how many it
 * needs, from the machine's range; sourceAddress mirrors the C client's rule for tests and reports.
 */

import { readFileSync } from 'node:fs';

/** 127.0.0.2 .. 127.0.0.254: the C client's MAX_SOURCES. */
export const MAX_SOURCES = 253;
/**
 * Share of an address's ephemeral ports one run may take: the rest stays for the machine's other
 * programs (the harness's own busy connection comes from 127.0.0.1, but other sessions share the
 * range) and for ports a closed connection still holds.
 */
export const PORT_SHARE = 0.8;

export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** net.ipv4.ip_local_port_range, or undefined where it cannot be read. */
export function ephemeralPortRange(): PortRange | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined && high >= low ? { low, high } : undefined;
  } catch {
    return undefined;
  }
}

/** Connections one source address may carry in a run. */
export function connectionsPerSource(range: PortRange): number {
  return Math.floor((range.high - range.low + 1) * PORT_SHARE);
}

/**
 * How many source addresses `connections` need (0 for none), or why they cannot have enough:
 * one line for the report.
 */
export function sourcesFor(connections: number, range: PortRange): { sources: number } | { refusal: string } {
  if (connections === 0) return { sources: 0 };
  const perSource = connectionsPerSource(range);
  const sources = Math.ceil(connections / perSource);
  if (sources > MAX_SOURCES) {
    return { refusal: `${connections.toLocaleString('en-US')} connections need ${sources} source addresses of ${perSource.toLocaleString('en-US')} ports each (ip_local_port_range ${range.low}-${range.high}); the load generator has ${MAX_SOURCES}` };
  }
  return { sources };
}

/** The source address of connection `index` when spread over `sources` addresses (the C client's rule). */
export function sourceAddress(index: number, sources: number): string {
  return `127.0.0.${2 + (index % sources)}`;
}
