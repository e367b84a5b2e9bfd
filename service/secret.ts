import { createHash, timingSafeEqual } from 'node:crypto';
import { inspect } from 'node:util';

const MASK = '***';

function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/**
 * A password or token that cannot leak by accident: it prints, serialises and
 * inspects as `***` (template literals, JSON.stringify, util.inspect, log
 * formats, error messages built from it). The bytes live in a private field
 * that neither JSON nor inspect can see; `reveal()` is the one deliberate exit.
 */
export class Secret {
  #bytes: Buffer | null;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** Takes the UTF-8 bytes of `s`. */
  static fromString(s: string): Secret {
    if (typeof s !== 'string') throw new TypeError('Secret.fromString expects a string');
    return new Secret(Buffer.from(s, 'utf8'));
  }

  /** Copies `b`; the caller may wipe its own buffer afterwards. */
  static fromBuffer(b: Buffer | Uint8Array): Secret {
    if (!(b instanceof Uint8Array)) throw new TypeError('Secret.fromBuffer expects a Buffer');
    return new Secret(Buffer.from(b));
  }

  #live(): Buffer {
    if (this.#bytes === null) throw new Error('secret has been disposed');
    return this.#bytes;
  }

  /** The secret as a string. Call only where the value must leave the process (stdout on request, a BMC). */
  reveal(): string {
    return this.#live().toString('utf8');
  }

  /** A fresh copy of the bytes; the caller wipes it (`fill(0)`) when done. */
  copyBytes(): Buffer {
    return Buffer.from(this.#live());
  }

  /** Length in bytes (what an IPMI password field holds). */
  get length(): number {
    return this.#live().length;
  }

  get disposed(): boolean {
    return this.#bytes === null;
  }

  /** Constant-time comparison of the bytes. */
  equals(other: Secret): boolean {
    if (!(other instanceof Secret)) return false;
    const a = this.#live();
    const b = other.#live();
    // Digests of equal length, so neither the comparison nor an early return on a
    // length mismatch tells a caller how long the secret is or how much matched.
    const same = timingSafeEqual(digest(a), digest(b));
    return same && a.length === b.length;
  }

  /** Overwrites the bytes; any later use throws. Idempotent. */
  dispose(): void {
    if (this.#bytes) this.#bytes.fill(0);
    this.#bytes = null;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [Symbol.toPrimitive](): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}
