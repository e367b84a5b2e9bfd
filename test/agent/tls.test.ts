import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import { loadConfig } from '../../agent/config.js';
import { createLogger } from '../../agent/logger.js';
import { LineCollector } from '../../agent/log-streams.js';
import { serve, type IronicClientModule } from '../../agent/serve.js';
import { generateSelfSigned } from '../../service/tls/self-signed.js';
import { captureLines } from '../helpers/secrets.js';

function httpsGet(url: string, opts: { ca?: string; maxVersion?: SecureVersion; minVersion?: SecureVersion }): Promise<{ status: number; body: string; peerCert: string | undefined; protocol: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: opts.ca, maxVersion: opts.maxVersion, minVersion: opts.minVersion, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        body,
        peerCert: (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.toString(),
        protocol: (res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? null,
      }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('with a conductor, the API serves auto-TLS: P-384 self-signed cert for the advertised IP, PEM handed to heartbeats, minimum raised by lookup', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-tls-'));
  const lines = new LineCollector();
  let deps: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  let stopped = 0;
  const fakeIronic: IronicClientModule = {
    startIronicClient: async (d) => {
      deps = d;
      return { stop: async () => void stopped++, forceHeartbeat: () => undefined };
    },
  };
  const loaded = loadConfig({
    argv: ['--api-url', 'http://127.0.0.1:9', '--advertise-host', '127.0.0.1', '--listen-host', '127.0.0.1', '--listen-port', '0', '--backend', 'simulated', '--state-dir', join(dir, 's')],
    env: {}, cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }), loadIronicClient: async () => fakeIronic });
  try {
    assert.equal(agent.tls.mode, 'auto');
    const pem = deps.getVerifyCa();
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    const cert = new X509Certificate(pem);
    assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    assert.ok(new Date(cert.validFrom).getTime() < Date.now() - 3000 * 1000, 'valid from an hour ago (clock skew)');
    assert.equal(deps.advertiseUrl(), `https://127.0.0.1:${agent.port}`);

    // A client that trusts exactly this certificate gets through, with the hostname checked against the SAN.
    const ok = await httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: pem });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).version, '0.1.0');
    assert.equal(new X509Certificate(ok.peerCert ?? pem).fingerprint256, cert.fingerprint256);
    // Without the CA the certificate is refused: it is self-signed.
    await assert.rejects(httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, {}), /self[- ]signed/i);
    // TLS 1.2 is accepted by default...
    const v12 = await httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: pem, maxVersion: 'TLSv1.2' });
    assert.equal(v12.protocol, 'TLSv1.2');
    // ...until the conductor's lookup config asks for 1.3 (Ironic's default tls_minimum_version).
    deps.onNodeInfo({ uuid: 'n' }, { tls_min_version: '1.3' });
    await assert.rejects(httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: pem, maxVersion: 'TLSv1.2' }));
    const v13 = await httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: pem });
    assert.equal(v13.protocol, 'TLSv1.3');
    assert.equal(typeof deps.tokens.check, 'function', 'the conductor client shares the token store');
  } finally {
    await agent.close();
    assert.equal(stopped, 1, 'closing stops the conductor client');
    captureLines('agent-tls-auto', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--listen-tls serves the operator\'s certificate and key, with no agent_verify_ca', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inband-tls-op-'));
  const c = generateSelfSigned({ address: '127.0.0.1', commonName: 'operator' });
  writeFileSync(join(dir, 'cert.pem'), c.certPem);
  writeFileSync(join(dir, 'key.pem'), c.keyPem, { mode: 0o600 });
  const lines = new LineCollector();
  const loaded = loadConfig({
    argv: ['--standalone', '--listen-tls', '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'), '--tls-min-version', '1.3',
      '--listen-host', '127.0.0.1', '--listen-port', '0', '--backend', 'simulated', '--state-dir', join(dir, 's')],
    env: {}, cmdlinePath: null,
  });
  const agent = await serve({ loaded, logger: createLogger({ stream: lines, format: 'json' }) });
  try {
    assert.equal(agent.tls.mode, 'operator');
    assert.equal(agent.tls.verifyCa, undefined);
    const r = await httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: c.certPem });
    assert.equal(r.status, 200);
    assert.equal(r.protocol, 'TLSv1.3');
    await assert.rejects(httpsGet(`https://127.0.0.1:${agent.port}/v1/status`, { ca: c.certPem, maxVersion: 'TLSv1.2' }));
  } finally {
    await agent.close();
    captureLines('agent-tls-operator', lines.lines);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the self-signed certificate names an IPv6 or DNS advertise address correctly', () => {
  assert.equal(new X509Certificate(generateSelfSigned({ address: 'fd00::5', commonName: 'h' }).certPem).subjectAltName, 'IP Address:FD00:0:0:0:0:0:0:5');
  assert.equal(new X509Certificate(generateSelfSigned({ address: '[::ffff:10.0.0.1]', commonName: 'h' }).certPem).subjectAltName, 'IP Address:0:0:0:0:0:FFFF:A00:1');
  assert.equal(new X509Certificate(generateSelfSigned({ address: 'node-1.example', commonName: 'h' }).certPem).subjectAltName, 'DNS:node-1.example');
});
