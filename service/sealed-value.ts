/**
 * The sealed-secret format shared by its two halves: the conductor side seals a
 * BMC password to the agent's auto-TLS key (conductor/seal.ts), the agent opens
 * it (agent/tls/sealing-key.ts). Both derive the key and the AAD here, so the
 * two cannot drift apart (the Python Ironic driver reads the same constants
 * from service/credential-contract.json; docs/credential-contract.md, "The
 * shared floor"); the scheme is described in agent/tls/sealing-key.ts.
 */
import { createHash, type KeyObject } from 'node:crypto';

/**
 * The format's constants as data, exported with the credential contract
 * (service/credential-contract.json, `sealedValue`) so the Python Ironic
 * driver seals with the same ones (ironic-driver/inband_ironic/sealing.py):
 *
 *   epk  = a fresh EC key on the recipient's curve (one of `curves`)
 *   Z    = ECDH(epk, recipient key)
 *   key  = HKDF-SHA-256(Z, salt = nonce, info = infoLabel 0 purpose 0 node 0 user 0 kid), keyBytes long
 *   ct, tag = AES-256-GCM(key, iv, password, aad = alg 0 kid 0 crv 0 x 0 y)
 */
export const SEALED_FORMAT = Object.freeze({
  version: 1,
  alg: 'ECDH-ES+A256GCM',
  infoLabel: 'inband-agent sealed-secret v1',
  /** What a sealed BMC password is for: the agent step (and `bmc.set_credentials`) that sets it. */
  purpose: 'set_bmc_credentials',
  /** The recipient curves (the agent's auto-TLS key is P-384): JWK name and SEC 2 name. */
  curves: Object.freeze([
    Object.freeze({ jwk: 'P-256', sec2: 'secp256r1' }),
    Object.freeze({ jwk: 'P-384', sec2: 'secp384r1' }),
    Object.freeze({ jwk: 'P-521', sec2: 'secp521r1' }),
  ]),
  kdfHash: 'sha256',
  keyBytes: 32,
  nonceBytes: 32,
  ivBytes: 12,
  tagBytes: 16,
  /** Binary fields are base64url without padding. */
  encoding: 'base64url',
});

export const SEALED_VERSION = SEALED_FORMAT.version;
export const SEALED_ALG = SEALED_FORMAT.alg;
export const SEALED_INFO_LABEL = SEALED_FORMAT.infoLabel;
export const SEALED_PURPOSE = SEALED_FORMAT.purpose;
/** The JWK curve names a value may be sealed on. */
export const SEALED_CURVES: readonly string[] = SEALED_FORMAT.curves.map((c) => c.jwk);

/** The JSON shape of a sealed value (all binary fields base64url). */
export interface SealedValue {
  v: number;
  alg: string;
  /** base64url SHA-256 of the recipient key's SPKI DER. */
  kid: string;
  /** The ephemeral public key, as a JWK. */
  epk: { kty: string; crv: string; x: string; y: string };
  nonce: string;
  iv: string;
  ct: string;
  tag: string;
  /** The Ironic node uuid the value is for. */
  node: string;
  /** What the value is for (the step name, `set_bmc_credentials`). */
  purpose: string;
  /** The BMC user the password is for. */
  user: string;
}

/** base64url SHA-256 of a public key's SubjectPublicKeyInfo DER. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64url');
}

/** HKDF info: binds the derived key to purpose, node, user and recipient key. */
export function sealedInfo(purpose: string, node: string, user: string, kid: string): Buffer {
  return Buffer.from([SEALED_INFO_LABEL, purpose, node, user, kid].join('\0'), 'utf8');
}

/** AES-GCM additional data: the algorithm, recipient and ephemeral key. */
export function sealedAad(alg: string, kid: string, epk: SealedValue['epk']): Buffer {
  return Buffer.from([alg, kid, epk.crv, epk.x, epk.y].join('\0'), 'utf8');
}
