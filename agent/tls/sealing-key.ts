/**
 * Opening a value sealed to this agent (`password_sealed`): ECIES to the key
 * of the agent's auto-TLS certificate, the one Ironic pins from
 * `agent_verify_ca` (research: ipa.md §1.8). The conductor side
 * (conductor/seal.ts) seals; the format is described in conductor/README.md
 * ("Sealed step arguments") and both halves are tested against each other.
 *
 *   Z    = ECDH(agent key, epk)                       (epk: the sender's ephemeral public key, same curve)
 *   salt = nonce (32 random bytes, base64url)
 *   info = "inband-agent sealed-secret v1" 0 purpose 0 node 0 user 0 kid
 *   key  = HKDF-SHA-256(Z, salt, info, 32)
 *   ct, tag = AES-256-GCM(key, iv, plaintext, aad = alg 0 kid 0 crv 0 x 0 y)
 *
 * `kid` is the base64url SHA-256 of the recipient's SubjectPublicKeyInfo DER:
 * a value sealed to another agent's key is refused by name before any
 * decryption, and a changed node, user or purpose derives another key, so GCM
 * refuses it. The private key lives in memory only, for one agent process
 * (one boot); the nonces it opened are remembered for that life, so a sealed
 * value copied out of Ironic's records cannot be replayed to the same agent.
 */
import { createDecipheriv, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { Secret } from '../../service/secret.js';
import { SEALED_ALG, SEALED_FORMAT, SEALED_VERSION, keyId, sealedAad, sealedInfo, type SealedValue } from '../../service/sealed-value.js';

export { SEALED_VERSION, SEALED_ALG, SEALED_INFO_LABEL, SEALED_PURPOSE, keyId, sealedInfo, sealedAad, type SealedValue } from '../../service/sealed-value.js';

/** JSON schema of a sealed value, for the command and step params. */
export const SEALED_VALUE_SCHEMA = {
  type: 'object',
  properties: {
    v: { type: 'integer' },
    alg: { type: 'string', maxLength: 64 },
    kid: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
    epk: {
      type: 'object',
      properties: {
        kty: { type: 'string', maxLength: 8 },
        crv: { type: 'string', maxLength: 16 },
        x: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,120}$' },
        y: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,120}$' },
      },
      required: ['kty', 'crv', 'x', 'y'],
      additionalProperties: false,
    },
    nonce: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
    iv: { type: 'string', pattern: '^[A-Za-z0-9_-]{16}$' },
    // 20 password bytes at most (§22.30): the ciphertext is as long.
    ct: { type: 'string', pattern: '^[A-Za-z0-9_-]{2,27}$' },
    tag: { type: 'string', pattern: '^[A-Za-z0-9_-]{22}$' },
    node: { type: 'string', minLength: 1, maxLength: 64 },
    purpose: { type: 'string', minLength: 1, maxLength: 64 },
    user: { type: 'string', minLength: 1, maxLength: 16 },
  },
  required: ['v', 'alg', 'kid', 'epk', 'nonce', 'iv', 'ct', 'tag', 'node', 'purpose', 'user'],
  additionalProperties: false,
} as const;

/** Why a sealed value was refused; the message names no secret. */
export class SealedValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedValueError';
  }
}

export interface OpenExpectation {
  purpose: string;
  user: string;
  /** The node this agent serves, when known (Ironic sends it with every step). */
  node?: string;
}

/** The agent's private key for sealed values; one per agent process. */
export class SealingKey {
  readonly kid: string;
  readonly curve: string;
  readonly #key: KeyObject;
  readonly #opened = new Set<string>();

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ec') throw new TypeError('a sealing key is an EC private key');
    this.#key = privateKey;
    const pub = createPublicKey(privateKey);
    this.kid = keyId(pub);
    this.curve = String((pub.export({ format: 'jwk' }) as { crv?: string }).crv);
  }

  /** Opens `sealed`, checking it is for this key, node, user and purpose, and was not opened before. */
  open(sealed: SealedValue, expect: OpenExpectation): Secret {
    if (sealed.v !== SEALED_VERSION || sealed.alg !== SEALED_ALG) {
      throw new SealedValueError(`unsupported sealed value (v ${sealed.v}, alg ${JSON.stringify(sealed.alg)}); this agent opens v ${SEALED_VERSION} ${SEALED_ALG}`);
    }
    if (sealed.kid !== this.kid) {
      throw new SealedValueError(`sealed for another agent key (kid ${sealed.kid}); this agent's certificate key is ${this.kid} — seal to the certificate Ironic pinned for this boot`);
    }
    if (expect.node !== undefined && sealed.node !== expect.node) {
      throw new SealedValueError(`sealed for node ${sealed.node}, but this agent serves node ${expect.node}`);
    }
    if (sealed.purpose !== expect.purpose) throw new SealedValueError(`sealed for ${JSON.stringify(sealed.purpose)}, not ${JSON.stringify(expect.purpose)}`);
    if (sealed.user !== expect.user) throw new SealedValueError(`sealed for BMC user ${JSON.stringify(sealed.user)}, not ${JSON.stringify(expect.user)}`);
    if (sealed.epk.kty !== 'EC' || sealed.epk.crv !== this.curve) {
      throw new SealedValueError(`the ephemeral key must be an EC key on ${this.curve}, not ${sealed.epk.kty} ${sealed.epk.crv}`);
    }
    if (this.#opened.has(sealed.nonce)) throw new SealedValueError('this sealed value was already used by this agent (replay refused)');
    let epk: KeyObject;
    try {
      epk = createPublicKey({ key: { ...sealed.epk }, format: 'jwk' });
    } catch {
      throw new SealedValueError('the ephemeral public key is not a valid point');
    }
    let z: Buffer | undefined;
    let key: Buffer | undefined;
    let plain: Buffer | undefined;
    try {
      z = diffieHellman({ privateKey: this.#key, publicKey: epk });
      key = Buffer.from(hkdfSync(SEALED_FORMAT.kdfHash, z, Buffer.from(sealed.nonce, 'base64url'), sealedInfo(sealed.purpose, sealed.node, sealed.user, sealed.kid), SEALED_FORMAT.keyBytes));
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
      d.setAAD(sealedAad(sealed.alg, sealed.kid, sealed.epk));
      d.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
      plain = Buffer.concat([d.update(Buffer.from(sealed.ct, 'base64url')), d.final()]);
    } catch {
      throw new SealedValueError('does not open with this agent\'s key: altered, or sealed for another node, user or key');
    } finally {
      z?.fill(0);
      key?.fill(0);
    }
    try {
      if (plain.length < 1 || plain.length > 20) throw new SealedValueError(`the sealed password is ${plain.length} bytes; 1-20 fit a BMC (§22.30)`);
      this.#opened.add(sealed.nonce);
      if (this.#opened.size > 4096) this.#opened.delete(this.#opened.values().next().value as string);
      return Secret.fromBuffer(plain);
    } finally {
      plain.fill(0);
    }
  }
}
