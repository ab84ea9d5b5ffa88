/**
 * The one place the labs print. Lines go to stdout, prefixed with the lab's name, so several labs
 * running in several terminals stay tellable apart; `--quiet` drops the per-client lines, which
 * under load would cost more than the echo itself.
 */

export interface Logger {
  /** True when per-client lines are dropped (--quiet); child processes inherit it. */
  readonly quiet: boolean;
  /** Server-level events: listening, shutting down, a child that crashed. */
  info(message: string): void;
  /** Per-client events: connect and disconnect. Dropped with --quiet. */
  client(message: string): void;
  /** Something went wrong that the operator should see; goes to stderr. */
  warn(message: string): void;
}

export function createLogger(name: string, quiet: boolean): Logger {
  const prefix = `[${name}]`;
  return {
    quiet,
    info: (message) => console.log(`${prefix} ${message}`),
    client: quiet ? () => {} : (message) => console.log(`${prefix} ${message}`),
    warn: (message) => console.error(`${prefix} ${message}`),
  };
}

/**
 * 1536 -> "1.5 KiB": byte counts in log lines and reports are read by people. Negative counts
 * (memory that shrank between two weighings) keep their sign and their unit.
 */
export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${Math.round(bytes)} B`;
  if (abs < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * 1 -> "1 connection", 3 -> "3 connections": counts in log lines read as English, whatever the
 * count. `many` is for nouns whose plural is not the noun plus "s" ("children").
 */
export function plural(count: number | bigint, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 || count === 1n ? one : many}`;
}
