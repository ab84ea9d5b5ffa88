/**
 * What the raw-TCP load generator sends: per connection, a numbered sequence of messages whose
 * every byte is predictable, so each echoed byte can be checked against the one sent.
 *
 * Message `seq` of connection `c` starts with c and seq as two big-endian 32-bit integers (cut
 * short for messages under 8 bytes) followed by a byte pattern that depends on c and starts at a
 * different offset for each seq. A byte echoed to the wrong connection, repeated, reordered or
 * changed therefore never matches what the connection expects next.
 *
 * Cost: one memcpy from a pattern prepared once per connection, plus two integer writes. Filling
 * 4 KiB byte by byte in JavaScript per message would make the client, not the server, the limit.
 */

/** Offsets the pattern rotates through: a prime, so consecutive messages differ everywhere. */
const ROTATIONS = 251;

export class MessageSequence {
  readonly #pattern: Buffer;
  readonly #message: Buffer;
  readonly #connection: number;

  constructor(connection: number, readonly size: number) {
    this.#connection = connection;
    this.#pattern = Buffer.allocUnsafe(size + ROTATIONS);
    for (let i = 0; i < this.#pattern.length; i++) this.#pattern[i] = (i * 131 + connection * 29 + 7) & 0xff;
    this.#message = Buffer.allocUnsafe(size);
  }

  /**
   * The bytes of message `seq`. The buffer is reused for the next message: the closed loop only
   * asks for message seq+1 once message seq came back whole, and the server cannot echo the last
   * byte of a write before the kernel has taken all of it.
   */
  message(seq: number): Buffer {
    const start = seq % ROTATIONS;
    this.#pattern.copy(this.#message, 0, start, start + this.size);
    const header = Buffer.allocUnsafe(8);
    header.writeUInt32BE(this.#connection >>> 0, 0);
    header.writeUInt32BE(seq >>> 0, 4);
    header.copy(this.#message, 0, 0, Math.min(8, this.size));
    return this.#message;
  }
}
