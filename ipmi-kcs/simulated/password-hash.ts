/**
 * How the simulated BMC keeps a password: size (16 or 20, §22.30) and a salted
 * scrypt hash of the NUL-padded bytes, never the bytes themselves at rest.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

export interface StoredPassword {
  /** 16 or 20: the form it was set with (§22.30 byte 1 bit 7). */
  size: 16 | 20;
  /** All bytes zero: the "null password" (§6.9.1). */
  isNull: boolean;
  salt: string;
  hash: string;
}

// Small cost: these are simulated BMC passwords, hashed on every Set/Test Password.
const SCRYPT = { N: 1024, r: 8, p: 1 } as const;

function digest(bytes: Uint8Array, salt: Buffer): Buffer {
  return scryptSync(bytes, salt, 32, SCRYPT);
}

export function hashPassword(bytes: Uint8Array, size: 16 | 20): StoredPassword {
  const salt = randomBytes(16);
  return { size, isNull: bytes.every((b) => b === 0), salt: salt.toString('hex'), hash: digest(bytes, salt).toString('hex') };
}

export function passwordMatches(stored: StoredPassword, bytes: Uint8Array): boolean {
  const expected = Buffer.from(stored.hash, 'hex');
  const actual = digest(bytes, Buffer.from(stored.salt, 'hex'));
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** NUL-pads (or refuses) a text password to its wire form. */
export function padPassword(password: string | Uint8Array, size: 16 | 20): Uint8Array {
  const src = typeof password === 'string' ? Buffer.from(password, 'latin1') : password;
  if (src.length > size) throw new Error(`password longer than ${size} bytes`);
  const out = new Uint8Array(size);
  out.set(src);
  return out;
}
