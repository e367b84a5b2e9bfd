/**
 * Self-signed certificates for the two programs, built with node:crypto and a
 * small DER writer (no openssl process, no package):
 * - the agent's auto-TLS certificate, as IPA makes it (ipa.md §1.8,
 *   `tls_utils.generate_tls_certificate`): an EC key (P-384), CN = hostname, a
 *   critical subjectAltName naming the advertised address, valid from now
 *   minus the allowed clock skew (1 h) for 30 days. Its PEM is what the
 *   heartbeat sends as `agent_verify_ca`; Ironic pins it.
 * - the conductor side's discovery certificate: P-256, every listen address
 *   in the subjectAltName, a year.
 * The key stays in memory: nothing is written to disk by this module.
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { bitString, boolean, explicit, implicitPrimitive, octetString, oid, pem, sequence, set, smallInteger, time, unsignedInteger, utf8String } from './der.js';

const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
};

export type Curve = 'p384' | 'p256';
const CURVES: Record<Curve, string> = { p384: 'secp384r1', p256: 'prime256v1' };

/** The signature follows the curve's strength (RFC 5480 §4): P-384 with SHA-384, P-256 with SHA-256. */
const SIGNATURE: Record<Curve, { hash: string; oid: string }> = {
  p384: { hash: 'sha384', oid: OID.ecdsaWithSHA384 },
  p256: { hash: 'sha256', oid: OID.ecdsaWithSHA256 },
};

export interface SelfSignedOptions {
  /** The address (IP or DNS name) the certificate must name; `names` for several. */
  address?: string;
  names?: readonly string[];
  /** Whether subjectAltName is marked critical (IPA marks it; default true). */
  sanCritical?: boolean;
  commonName: string;
  curve?: Curve;
  validDays?: number;
  clockSkewSeconds?: number;
  now?: Date;
}

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  key: KeyObject;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the DER certificate, colon hex (what `openssl x509 -fingerprint -sha256` prints). */
  fingerprint: string;
}

/** IPv4/IPv6 text to the bytes of a GeneralName iPAddress (RFC 5280 §4.2.1.6). */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand "::" and any embedded IPv4 tail.
  let text = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail !== undefined ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function generateSelfSigned(opts: SelfSignedOptions): SelfSigned {
  const curve = opts.curve ?? 'p384';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve] });
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - (opts.clockSkewSeconds ?? 3600) * 1000);
  const notAfter = new Date(now.getTime() + (opts.validDays ?? 30) * 86400 * 1000);
  const name = sequence(set(sequence(oid(OID.commonName), utf8String(opts.commonName.slice(0, 64)))));
  const sig = SIGNATURE[curve];
  const sigAlg = sequence(oid(sig.oid));
  const names = [...(opts.names ?? []), ...(opts.address !== undefined ? [opts.address] : [])];
  if (!names.length) throw new Error('a certificate needs at least one name');
  // GeneralName: iPAddress [7] or dNSName [2] (RFC 5280 §4.2.1.6).
  const general = names.map((n) => {
    const addr = n.replace(/^\[|\]$/g, '');
    return isIP(addr) ? implicitPrimitive(7, ipBytes(addr)) : implicitPrimitive(2, Buffer.from(addr, 'ascii'));
  });
  const san = sequence(oid(OID.subjectAltName), ...(opts.sanCritical === false ? [] : [boolean(true)]), octetString(sequence(...general)));
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(serial),
    sigAlg,
    name,
    sequence(time(notBefore), time(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(san)),
  );
  const signature = sign(sig.hash, tbs, privateKey);
  const cert = sequence(tbs, sigAlg, bitString(signature));
  const certPem = pem('CERTIFICATE', cert);
  // Parse it back: a malformed certificate fails here, at start, not in a peer.
  new X509Certificate(certPem);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const fingerprint = (createHash('sha256').update(cert).digest('hex').toUpperCase().match(/../g) as string[]).join(':');
  return { certPem, keyPem, key: createPrivateKey(keyPem), notBefore, notAfter, fingerprint };
}

