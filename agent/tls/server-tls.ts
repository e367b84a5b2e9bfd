/**
 * How the API is served: plain HTTP, TLS with the operator's certificate
 * (--listen-tls), or auto-TLS with a self-signed certificate for the
 * advertised address (IPA's behaviour when a conductor is configured).
 * Only auto-TLS has a `verifyCa` to send in heartbeats (`agent_verify_ca`).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { SecureContextOptions, SecureVersion } from 'node:tls';
import { generateSelfSigned, type Curve } from '../../service/tls/self-signed.js';
import { SealingKey } from './sealing-key.js';

export type TlsMode = 'none' | 'operator' | 'auto';

export interface TlsSetup {
  mode: TlsMode;
  /** Options for https.createServer / setSecureContext. */
  options?: SecureContextOptions & { minVersion: SecureVersion };
  /** The certificate PEM to send as agent_verify_ca (auto-TLS only). */
  verifyCa?: string;
  /** The certificate's key, for opening values sealed to this agent (auto-TLS only; memory only). */
  sealingKey?: SealingKey;
}

export const tlsVersion = (v: string): SecureVersion => (v === '1.3' ? 'TLSv1.3' : 'TLSv1.2');

/** The higher of two TLS minimums ("1.2"/"1.3"); unknown values are ignored. */
export function raiseMinVersion(current: string, requested: unknown): string {
  if (requested === '1.3' || requested === 'TLSv1.3') return '1.3';
  return current;
}

export function operatorTls(certFile: string, keyFile: string, minVersion: string, read: (p: string) => Buffer = (p) => readFileSync(p)): TlsSetup {
  return { mode: 'operator', options: { cert: read(certFile), key: read(keyFile), minVersion: tlsVersion(minVersion) } };
}

export function autoTls(address: string, minVersion: string, curve: Curve = 'p384'): TlsSetup {
  const c = generateSelfSigned({ address, commonName: hostname() || 'inband-agent', curve });
  // The certificate Ironic pins is also the key step arguments are sealed to (password_sealed);
  // serve hands it to the API (agent/serve.ts), which alone opens sealed values.
  const sealingKey = new SealingKey(c.key);
  return { mode: 'auto', options: { cert: c.certPem, key: c.keyPem, minVersion: tlsVersion(minVersion) }, verifyCa: c.certPem, sealingKey };
}
