/**
 * A self-signed certificate for the discovery service when the operator gives
 * none (`conductor serve` without --tls-cert-file): an EC P-256 key and an
 * X.509 v3 certificate naming every listen address in its subjectAltName,
 * built with node:crypto and a few DER writers (X.690 §8), no openssl process.
 * The key stays in memory; only the certificate is written out, for the
 * ramdisk to trust (NODE_EXTRA_CA_CERTS, or the agent's `ipa-insecure`).
 * conductor/ may not import agent/, so this is its own small copy of the
 * agent's auto-TLS certificate code.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

const len = (n: number): Buffer => {
  if (n < 0x80) return Buffer.from([n]);
  const b: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) b.unshift(v & 0xff);
  return Buffer.from([0x80 | b.length, ...b]);
};
const tlv = (tag: number, c: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), len(c.length), c]);
const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));

function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let b = bytes.subarray(i);
  if ((b[0] as number) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const p = dotted.split('.').map(Number);
  const out: number[] = [40 * (p[0] as number) + (p[1] as number)];
  for (const n of p.slice(2)) {
    const stack = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) stack.unshift((v & 0x7f) | 0x80);
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const pad = (n: number): string => String(n).padStart(2, '0');
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  return y < 2050 ? tlv(0x17, Buffer.from(`${pad(y % 100)}${rest}`)) : tlv(0x18, Buffer.from(`${y}${rest}`));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface ServiceCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, colon hex (what `openssl x509 -fingerprint -sha256` prints). */
  fingerprint: string;
}

/** `names`: IP addresses and DNS names the agents will use to reach the service. */
export function selfSignedCertificate(names: readonly string[], validDays = 365): ServiceCertificate {
  if (!names.length) throw new Error('a certificate needs at least one name');
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  const cn = seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from('inband-conductor discovery')))));
  const sigAlg = seq(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  // GeneralName: iPAddress [7] or dNSName [2] (RFC 5280 §4.2.1.6).
  const general = names.map((n) => {
    const a = n.replace(/^\[|\]$/g, '');
    return isIP(a) ? tlv(0x87, ipBytes(a)) : tlv(0x82, Buffer.from(a, 'ascii'));
  });
  const san = seq(oid('2.5.29.17'), octetString(seq(...general)));
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const tbs = seq(
    tlv(0xa0, uint(Buffer.from([2]))), // v3
    uint(serial), sigAlg, cn,
    seq(time(new Date(now - 3600_000)), time(new Date(now + validDays * 86400_000))),
    cn,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(san)),
  );
  const der = seq(tbs, sigAlg, tlv(0x03, Buffer.concat([Buffer.from([0]), sign('sha256', tbs, privateKey)])));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
  new X509Certificate(certPem); // a malformed certificate fails here, at start
  const fingerprint = (createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g) as string[]).join(':');
  return { certPem, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), fingerprint };
}

function octetString(b: Buffer): Buffer {
  return tlv(0x04, b);
}
