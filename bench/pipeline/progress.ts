/**
 * The progress line on stderr: which scenario, lab, cell and repeat is running, and about how
 * long the whole run has left. On a terminal the line is rewritten in place; otherwise (make
 * piping to a log) each step prints its own line.
 *
 * Time left = the planned seconds of the steps still to come, scaled by how the steps so far
 * compared with their plan, so a slow machine's estimate corrects itself as the run goes on.
 */

export interface StepLabel {
  readonly scenario: string;
  readonly target: string;
  readonly cell: string;
  readonly repeat?: { readonly index: number; readonly of: number };
}

export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #plannedLeft: number;
  #plannedDone = 0;
  #actualDone = 0;
  #stepPlanned = 0;
  #stepStarted = 0;
  readonly #runStarted = performance.now();

  constructor(plannedSeconds: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#plannedLeft = plannedSeconds;
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  /** A step begins; `plannedSeconds` is its share of the plan. */
  step(label: StepLabel, plannedSeconds: number): void {
    this.#finishStep();
    this.#stepPlanned = plannedSeconds;
    this.#stepStarted = performance.now();
    const pace = this.#plannedDone > 5 ? Math.min(3, Math.max(0.5, this.#actualDone / this.#plannedDone)) : 1;
    const left = Math.max(0, this.#plannedLeft) * pace;
    const repeat = label.repeat ? ` · run ${label.repeat.index}/${label.repeat.of}` : '';
    const elapsed = formatDuration((performance.now() - this.#runStarted) / 1000);
    this.#write(`[bench ${elapsed}] ${label.scenario} · ${label.target} · ${label.cell}${repeat} · ~${formatDuration(left)} left`);
  }

  /** A message that must stay visible (a target skipped, a warning). */
  note(message: string): void {
    if (this.#tty) this.#stream.write('\r\x1b[K');
    this.#stream.write(`[bench] ${message}\n`);
  }

  done(wallSeconds: number): void {
    this.#finishStep();
    if (this.#tty) this.#stream.write('\r\x1b[K');
    this.#stream.write(`[bench] done in ${formatDuration(wallSeconds)}\n`);
  }

  #finishStep(): void {
    if (this.#stepStarted === 0) return;
    this.#plannedDone += this.#stepPlanned;
    this.#plannedLeft -= this.#stepPlanned;
    this.#actualDone += (performance.now() - this.#stepStarted) / 1000;
    this.#stepStarted = 0;
  }

  #write(line: string): void {
    if (this.#tty) this.#stream.write(`\r\x1b[K${line.slice(0, (this.#stream.columns || 120) - 1)}`);
    else this.#stream.write(`${line}\n`);
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
