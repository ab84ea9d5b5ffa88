/** Reproducible test payloads: the same seed gives the same bytes, so a failure can be replayed. */

import { seededRandom } from '../../helpers/util.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** `size` pseudo-random bytes from `seed` (four bytes per PRNG step: 64 MiB take ~0.1 s). */
export function randomBytes(size: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(random() * 0x1_0000_0000);
  return Buffer.from(words.buffer, 0, size);
}

/**
 * `total` bytes as a sequence of `block`-sized views of one random block, for streams too large
 * to hold (a client sending hundreds of MiB). The checksum still covers every byte sent.
 */
export function* repeatedBlocks(total: number, block: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < total; offset += block.length) {
    yield offset + block.length <= total ? block : block.subarray(0, total - offset);
  }
}
