/**
 * The progress line on stderr that every experiment shares: what is running and about how long
 * the whole run has left. On a terminal the line is rewritten in place; otherwise (make piping to
 * a log) each step prints its own line and in-place updates are left out, so logs stay readable.
 *
 * Time left = the planned seconds of the steps still to come, scaled by how the steps so far
 * compared with their plan, so a slow machine's estimate corrects itself as the run goes on.
 */

/** The pace correction starts once this many planned seconds are done: before, it is noise. */
const PACE_AFTER_S = 5;
/** The pace correction is clamped: one stalled step must not make the estimate absurd. */
const PACE_RANGE = [0.5, 3] as const;

export class Progress {
  readonly #name: string;
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #plannedLeft: number;
  #plannedDone = 0;
  #actualDone = 0;
  #stepPlanned = 0;
  #stepStarted = 0;
  #step = '';
  readonly #runStarted = performance.now();

  /** `plannedSeconds`: the whole run's plan, or 0 when there is none (no time left shown). */
  constructor(name: string, plannedSeconds = 0, stream: NodeJS.WriteStream = process.stderr) {
    this.#name = name;
    this.#plannedLeft = plannedSeconds;
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  /** A step begins; `plannedSeconds` is its share of the plan. */
  step(text: string, plannedSeconds = 0): void {
    this.#finishStep();
    this.#stepPlanned = plannedSeconds;
    this.#stepStarted = performance.now();
    this.#step = text;
    this.#write(this.#line(text), true);
  }

  /** More about the current step (a client connected): shown on a terminal only. */
  update(detail: string): void {
    if (this.#tty) this.#write(this.#line(`${this.#step}  ${detail}`), false);
  }

  /** A message that must stay visible (a target skipped, a run's result, a warning). */
  note(message: string): void {
    if (this.#tty) this.#stream.write('\r\x1b[K');
    this.#stream.write(`[${this.#name}] ${message}\n`);
  }

  done(): void {
    this.#finishStep();
    if (this.#tty) this.#stream.write('\r\x1b[K');
    this.#stream.write(`[${this.#name}] done in ${formatDuration((performance.now() - this.#runStarted) / 1000)}\n`);
  }

  #line(text: string): string {
    const elapsed = formatDuration((performance.now() - this.#runStarted) / 1000);
    if (this.#plannedDone + this.#plannedLeft <= 0) return `[${this.#name} ${elapsed}] ${text}`;
    const ratio = this.#actualDone / this.#plannedDone;
    const pace = this.#plannedDone > PACE_AFTER_S ? Math.min(PACE_RANGE[1], Math.max(PACE_RANGE[0], ratio)) : 1;
    return `[${this.#name} ${elapsed}] ${text} · ~${formatDuration(Math.max(0, this.#plannedLeft) * pace)} left`;
  }

  #finishStep(): void {
    if (this.#stepStarted === 0) return;
    this.#plannedDone += this.#stepPlanned;
    this.#plannedLeft -= this.#stepPlanned;
    this.#actualDone += (performance.now() - this.#stepStarted) / 1000;
    this.#stepStarted = 0;
  }

  #write(line: string, newStep: boolean): void {
    if (this.#tty) this.#stream.write(`\r\x1b[K${line.slice(0, (this.#stream.columns || 120) - 1)}`);
    else if (newStep) this.#stream.write(`${line}\n`);
  }
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
