/**
 * Sealing a BMC password to the agent that will set it, so that the step
 * arguments Ironic persists (`driver_internal_info.clean_steps`/`clean_step`,
 * returned unmasked by Ironic 21.4's API and logged by its conductor at DEBUG)
 * carry no plain password (issue #6 item 4; design in README.md "Sealed step
 * arguments").
 *
 * The recipient is the agent's auto-TLS certificate: the agent sends its PEM
 * in every heartbeat as `agent_verify_ca`, Ironic pins it and writes it to
 * `[agent]certificates_path/<node-uuid>.crt` on the conductor host, recording
 * that path in `driver_internal_info.agent_verify_ca` (research: ipa.md §1.8).
 * Its EC key (P-384) lives only in the agent's memory.
 *
 * ECIES: a fresh ephemeral key on the recipient's curve; Z = ECDH; the
 * AES-256-GCM key = HKDF-SHA-256(Z, salt = fresh 32-byte nonce,
 * info = label 0 purpose 0 node 0 user 0 kid); aad = alg 0 kid 0 crv 0 x 0 y.
 * The agent's half is agent/tls/sealing-key.ts (this layer may not import
 * it; the two are tested against each other).
 */
import { createCipheriv, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { SEALED_ALG, SEALED_CURVES, SEALED_FORMAT, SEALED_PURPOSE, SEALED_VERSION, keyId, sealedAad, sealedInfo, type SealedValue } from '../service/sealed-value.js';
import { readFile } from 'node:fs/promises';
import type { Secret } from '../service/secret.js';

export { SEALED_VERSION, SEALED_ALG, SEALED_PURPOSE, type SealedValue } from '../service/sealed-value.js';

/** An agent's certificate key, ready to seal to. */
export interface SealRecipient {
  key: KeyObject;
  /** base64url SHA-256 of the key's SPKI DER (the agent names its own the same way). */
  kid: string;
  curve: string;
  /** Where the certificate came from (a path, or "given"). */
  source: string;
  notAfter: Date;
}

export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

/** The recipient from a certificate PEM; refuses a non-EC or expired certificate. */
export function recipientFromCertificate(pem: string, source = 'given', now: Date = new Date()): SealRecipient {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new SealError(`the agent certificate from ${source} does not parse: ${(err as Error).message}`);
  }
  const key = cert.publicKey;
  const crv = key.asymmetricKeyType === 'ec' ? String((key.export({ format: 'jwk' }) as { crv?: string }).crv) : '';
  if (!SEALED_CURVES.includes(crv)) throw new SealError(`the agent certificate from ${source} has a ${key.asymmetricKeyType} key${crv ? ` on ${crv}` : ''}; sealing needs EC P-256/384/521 (the agent's auto-TLS key)`);
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() < now.getTime()) throw new SealError(`the agent certificate from ${source} expired at ${notAfter.toISOString()}`);
  const kid = keyId(key);
  return { key, kid, curve: crv, source, notAfter };
}

/**
 * The certificate Ironic pinned for the node's running agent:
 * `driver_internal_info.agent_verify_ca` is the path of the PEM on the
 * conductor host (or, from an Ironic that keeps it inline, the PEM itself).
 * Null when no agent certificate is pinned (no agent running, or not auto-TLS).
 */
export async function pinnedCertificate(
  driverInternalInfo: Record<string, unknown> | undefined,
  read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8'),
): Promise<{ pem: string; source: string } | null> {
  const v = driverInternalInfo?.agent_verify_ca;
  if (typeof v !== 'string' || v.length === 0) return null;
  if (v.includes('-----BEGIN CERTIFICATE-----')) return { pem: v, source: 'driver_internal_info.agent_verify_ca (inline)' };
  try {
    return { pem: await read(v), source: v };
  } catch (err) {
    throw new SealError(`Ironic pinned the agent certificate at ${v}, which cannot be read here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run on the conductor host or give --agent-cert`);
  }
}

/** Seals `password` to `recipient` for `node`'s BMC user `user`. The result holds no plain text. */
export function sealPassword(recipient: SealRecipient, password: Secret, binding: { node: string; user: string; purpose?: string }): SealedValue {
  const purpose = binding.purpose ?? SEALED_PURPOSE;
  // Node takes the JWK curve name (P-256, P-384, P-521) as the named curve.
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: recipient.curve });
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y: string };
  const epk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const nonce = randomBytes(SEALED_FORMAT.nonceBytes);
  const iv = randomBytes(SEALED_FORMAT.ivBytes);
  const z = diffieHellman({ privateKey, publicKey: recipient.key });
  const key = Buffer.from(hkdfSync(SEALED_FORMAT.kdfHash, z, nonce, sealedInfo(purpose, binding.node, binding.user, recipient.kid), SEALED_FORMAT.keyBytes));
  const plain = password.copyBytes();
  try {
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(sealedAad(SEALED_ALG, recipient.kid, epk));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return {
      v: SEALED_VERSION, alg: SEALED_ALG, kid: recipient.kid, epk,
      nonce: nonce.toString('base64url'), iv: iv.toString('base64url'), ct: ct.toString('base64url'), tag: c.getAuthTag().toString('base64url'),
      node: binding.node, purpose, user: binding.user,
    };
  } finally {
    plain.fill(0);
    z.fill(0);
    key.fill(0);
  }
}
