/**
 * A self-signed certificate for the discovery service when the operator gives
 * none (`conductor serve` without --tls-cert-file): an EC P-256 key and an
 * X.509 v3 certificate naming every listen address in its subjectAltName.
 * The key stays in memory; only the certificate is written out, for the
 * ramdisk to trust (NODE_EXTRA_CA_CERTS, or the agent's `ipa-insecure`).
 * The certificate writer is the one the agent's auto-TLS uses (service/tls/).
 */
import { generateSelfSigned } from '../service/tls/self-signed.js';

export interface ServiceCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, colon hex (what `openssl x509 -fingerprint -sha256` prints). */
  fingerprint: string;
}

/** `names`: IP addresses and DNS names the agents will use to reach the service. */
export function selfSignedCertificate(names: readonly string[], validDays = 365): ServiceCertificate {
  if (!names.length) throw new Error('a certificate needs at least one name');
  const c = generateSelfSigned({ names, commonName: 'inband-conductor discovery', curve: 'p256', validDays, sanCritical: false });
  return { certPem: c.certPem, keyPem: c.keyPem, fingerprint: c.fingerprint };
}
