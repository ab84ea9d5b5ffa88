/** Small wait-until helpers shared by the load generators and the experiments. */

/** Polls `ready` every `pollMs` until it holds (true), or until `timeoutMs` have passed (false). */
export async function until(ready: () => boolean, timeoutMs: number, pollMs = 10): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return true;
}

/**
 * Wakes a waiter when something it watches may have changed: on `notify()`, and every `pollMs`
 * for conditions that are about time passing. The condition decides; the poll only re-asks.
 */
export class Signal {
  #wake: (() => void) | undefined;
  #stopped = false;

  notify(): void {
    this.#wake?.();
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  async until(done: () => boolean, pollMs: number): Promise<void> {
    while (!this.#stopped && !done()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, pollMs);
        function finish() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = finish;
      });
      this.#wake = undefined;
    }
  }
}
