/**
 * How the simulated BMC keeps a password: size (16 or 20, §22.30) and a salted
 * scrypt hash of the NUL-padded bytes, never the bytes themselves at rest.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/** scrypt parameters, stored with each hash so a state file stays readable if the defaults change. */
export interface KdfCost {
  N: number;
  r: number;
  p: number;
}

/**
 * Nothing is written anywhere: a cheap salted hash is enough (the BMC's test
 * view holds the bytes in memory anyway), and every Set/Test Password stays fast.
 */
export const IN_MEMORY_COST: Readonly<KdfCost> = Object.freeze({ N: 16, r: 1, p: 1 });
/** A state file is at rest on disk: make guessing a password from it expensive (~16 MiB, tens of ms). */
export const AT_REST_COST: Readonly<KdfCost> = Object.freeze({ N: 16384, r: 8, p: 1 });
/** Hashes written before the cost was recorded. */
const LEGACY_COST: Readonly<KdfCost> = Object.freeze({ N: 1024, r: 8, p: 1 });

export interface StoredPassword {
  /** 16 or 20: the form it was set with (§22.30 byte 1 bit 7). */
  size: 16 | 20;
  /** All bytes zero: the "null password" (§6.9.1). */
  isNull: boolean;
  salt: string;
  hash: string;
  kdf?: KdfCost;
}

function digest(bytes: Uint8Array, salt: Buffer, cost: KdfCost): Buffer {
  return scryptSync(bytes, salt, 32, { ...cost, maxmem: 64 * 1024 * 1024 });
}

export function hashPassword(bytes: Uint8Array, size: 16 | 20, cost: KdfCost = AT_REST_COST): StoredPassword {
  const salt = randomBytes(16);
  return {
    size, isNull: bytes.every((b) => b === 0), salt: salt.toString('hex'), hash: digest(bytes, salt, cost).toString('hex'),
    kdf: { N: cost.N, r: cost.r, p: cost.p },
  };
}

export function passwordMatches(stored: StoredPassword, bytes: Uint8Array): boolean {
  const expected = Buffer.from(stored.hash, 'hex');
  const actual = digest(bytes, Buffer.from(stored.salt, 'hex'), stored.kdf ?? LEGACY_COST);
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
