/**
 * The sealed-secret format shared by its two halves: the conductor side seals a
 * BMC password to the agent's auto-TLS key (conductor/seal.ts), the agent opens
 * it (agent/tls/sealing-key.ts). Both derive the key and the AAD here, so the
 * two cannot drift apart; the scheme is described in agent/tls/sealing-key.ts
 * and conductor/README.md ("Sealed step arguments").
 */
import { createHash, type KeyObject } from 'node:crypto';

export const SEALED_VERSION = 1;
export const SEALED_ALG = 'ECDH-ES+A256GCM';
export const SEALED_INFO_LABEL = 'inband-agent sealed-secret v1';

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
