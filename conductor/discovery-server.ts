/**
 * The conductor's HTTP service: the discovery callback (discovery-service.ts)
 * and, when a token is configured, the vendor-passthru rotation endpoint
 * (passthru.ts) on one HTTPS listener. TLS because the discovery answer
 * carries a BMC password: with no certificate given, a self-signed one is
 * made for the listen address (tls-cert.ts) and its PEM written out for the
 * ramdisk to trust; the key never touches the disk.
 */
import { constants as fsc } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DiscoveryRecord, DiscoveryService } from './discovery-service.js';
import { selfSignedCertificate } from './tls-cert.js';
import { makeDir } from '../service/journal.js';

export interface DiscoveryServerOptions {
  host: string;
  port: number;
  discovery: DiscoveryService;
  /** PEM cert + key; `auto`: self-signed for `host` (+ `names`); `plain`: no TLS (loopback tests only). */
  tls: { cert: string; key: string } | { auto: true; names?: readonly string[]; certOut?: string } | 'plain';
  /** The passthru listener (mounted under /v1/nodes and /v1/rotations). */
  passthru?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Guards GET /v1/discoveries (records name nodes and BMCs). */
  authorised?: (req: IncomingMessage) => boolean;
}

export interface DiscoveryServer {
  url: string;
  /** The certificate the agents must trust (auto or given); null without TLS. */
  certPem: string | null;
  fingerprint: string | null;
  close(): Promise<void>;
}

export async function startDiscoveryServer(o: DiscoveryServerOptions): Promise<DiscoveryServer> {
  const discovery = o.discovery.handler(o.authorised);
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (discovery(req, res)) return;
    const path = (req.url ?? '/').split('?')[0] as string;
    if (o.passthru && (path.startsWith('/v1/nodes/') || path.startsWith('/v1/rotations/'))) return o.passthru(req, res);
    req.resume();
    const text = JSON.stringify({ error_message: JSON.stringify({ faultstring: 'not found', faultcode: 'Client', debuginfo: null }) });
    res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
  };
  let certPem: string | null = null;
  let fingerprint: string | null = null;
  let server: http.Server;
  if (o.tls === 'plain') {
    server = http.createServer(listener);
  } else if ('auto' in o.tls) {
    // A wildcard listen is reached on every address of this host: name them all (and the host name).
    const names = [...new Set([...(o.tls.names ?? []), ...(isWildcard(o.host) ? hostNames() : [o.host])])];
    const c = selfSignedCertificate(names);
    certPem = c.certPem;
    fingerprint = c.fingerprint;
    if (o.tls.certOut) await writeAtomic(o.tls.certOut, c.certPem, 0o644);
    server = https.createServer({ cert: c.certPem, key: c.keyPem, minVersion: 'TLSv1.2' }, listener);
  } else {
    certPem = o.tls.cert;
    server = https.createServer({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, listener);
  }
  // The agent's result post waits for an answer; verification runs after it, so answers are quick.
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = isWildcard(o.host) ? '127.0.0.1' : o.host;
  const url = `${o.tls === 'plain' ? 'http' : 'https'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url, certPem, fingerprint,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await o.discovery.close();
    },
  };
}

function hostNames(): string[] {
  const addrs = Object.values(networkInterfaces()).flat().filter((a) => a && !(a.family === 'IPv6' && a.address.startsWith('fe80'))).map((a) => (a as { address: string }).address);
  return ['127.0.0.1', 'localhost', hostname(), ...addrs];
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

/** `<dir>/discovery-<node or id>-<started>.json`, 0600, written whole. The record holds no secret. */
export async function writeDiscoveryRecord(dir: string, rec: DiscoveryRecord): Promise<string> {
  await makeDir(dir);
  const file = join(dir, `discovery-${rec.node ?? rec.id}-${rec.startedAt.replace(/[:.]/g, '-')}.json`);
  await writeAtomic(file, JSON.stringify(rec, null, 2) + '\n', 0o600);
  return file;
}
