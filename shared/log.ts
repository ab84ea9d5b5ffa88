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

export const SILENT: Logger = { quiet: true, info() {}, client() {}, warn() {} };

/** 1536 -> "1.5 KiB": byte counts in log lines are read by people. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
