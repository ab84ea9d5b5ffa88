/** Small test utilities: polling for a condition, and reproducible randomness. */

/**
 * Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`.
 * This waits for a condition to become true; it never stands in for one.
 */
export async function eventually<T>(probe: () => T | undefined, timeoutMs: number, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** mulberry32, the one the paced load generator draws its schedule from. */
import { seededRandom } from '../../bench/load/paced.js';

export { seededRandom };

/** Splits `data` into consecutive chunks of random sizes between `min` and `max` bytes. */
export function randomChunks(data: Buffer, random: () => number, min: number, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length; ) {
    const size = min + Math.floor(random() * (max - min + 1));
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/** `bytes` pseudo-random bytes, the same for the same seed (a payload whose echo is checked). */
export function randomPayload(bytes: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const payload = Buffer.alloc(bytes);
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  return payload;
}
