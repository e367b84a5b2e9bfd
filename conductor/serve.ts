/**
 * `inband-agent conductor serve` — the discovery service (scenario 1) and the
 * vendor-passthru rotation endpoint on one HTTPS listener; runs until SIGINT
 * or SIGTERM (or `io.signal`). Prints one JSON line on stdout once listening:
 * {"listening": URL, "certificate": FILE|null, "fingerprint": SHA-256|null}.
 */
import { checkWireParams, SECOND_USER_SUFFIX } from '../service/credential-contract.js';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Secret } from '../service/secret.js';
import { envToken, stateDir, storeFromOptions, writeRecord } from './options.js';
import { IpmitoolProver } from './bmc-proof.js';
import { DiscoveryService } from './discovery-service.js';
import { startDiscoveryServer, writeDiscoveryRecord } from './discovery-server.js';
import { IronicApi } from './ironic-api.js';
import { IronicEnrollApi } from './ironic-enroll.js';
import { conductorLog } from './log.js';
import { createPassthruHandler } from './passthru.js';
import { rotate } from './rotate.js';
import { makeDir } from '../service/journal.js';

export const SERVE_USAGE = `usage: inband-agent conductor serve --ironic-url URL [options]

Discovery (scenario 1): answers an unknown node's agent (its inspection
callback, POST /v1/continue) with a fresh BMC password over TLS; once the agent
reports it set, proves it over lanplus at the inventory's bmc_address, enrolls
the node in Ironic (ipmi) or updates the known node, stores it current and moves
a new node to manageable. With CONDUCTOR_AUTH_TOKEN set, also serves the
rotation passthru (POST /v1/nodes/NODE/vendor_passthru?method=set_bmc_credentials).

options:
  --ironic-url URL            Ironic API (required)
  --listen HOST:PORT          default 0.0.0.0:5050 (port 0: any free port)
  --tls-cert-file F --tls-key-file F   the service's certificate (default: self-signed)
  --tls-cert-out FILE         where a self-signed certificate goes (default next to the store)
  --tls-name NAME             extra address/name for the self-signed certificate (repeatable)
  --username U                BMC user pair U / U_b (default ironic)
  --username-b U2
  --inspector-url URL         forward inventories to ironic-inspector too
  --bmc-port N                the BMC's RMCP+ port (default 623)
  --ipmi-cipher-suite N       for the proof and driver_info (default 3)
  --store file|barbican, --store-path FILE, --barbican-url URL, --barbican-project-id ID
  --records-dir DIR           where discovery records go (default next to the file store)
  --result-timeout S          how long to wait for an agent's result (default 1800)
  --max-pending N             answered discoveries waiting for their agent, in all (default 64)
  --max-pending-per-source N  ... from one source address (default 4)
  --inventories-per-minute N  inventories taken per source address (default 20, bursts of 10)
  --ipmitool PATH

environment: IRONIC_AUTH_TOKEN, BARBICAN_AUTH_TOKEN (else OS_AUTH_TOKEN), CONDUCTOR_AUTH_TOKEN`;

export interface ServeIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Stops the service (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

export async function serveMain(args: readonly string[], io: ServeIo): Promise<number> {
  const usage = (msg: string): number => {
    io.stderr(`conductor serve: ${msg}\n${SERVE_USAGE}\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args], allowPositionals: false, strict: true,
      options: {
        'ironic-url': { type: 'string' }, listen: { type: 'string', default: '0.0.0.0:5050' },
        'tls-cert-file': { type: 'string' }, 'tls-key-file': { type: 'string' }, 'tls-cert-out': { type: 'string' },
        'tls-name': { type: 'string', multiple: true },
        username: { type: 'string', default: 'ironic' }, 'username-b': { type: 'string' },
        'inspector-url': { type: 'string' }, 'bmc-port': { type: 'string', default: '623' },
        'ipmi-cipher-suite': { type: 'string', default: '3' },
        store: { type: 'string', default: 'file' }, 'store-path': { type: 'string' },
        'barbican-url': { type: 'string' }, 'barbican-project-id': { type: 'string' },
        'records-dir': { type: 'string' }, 'result-timeout': { type: 'string', default: '1800' },
        'max-pending': { type: 'string', default: '64' }, 'max-pending-per-source': { type: 'string', default: '4' },
        'inventories-per-minute': { type: 'string', default: '20' },
        ipmitool: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout(SERVE_USAGE + '\n');
    return 0;
  }
  if (!v['ironic-url']) return usage('--ironic-url is required');
  const listen = /^(\[[^\]]+\]|[^:]+|[0-9a-fA-F:]+):(\d{1,5})$/.exec(v.listen as string);
  if (!listen || Number(listen[2]) > 65535) return usage('--listen is HOST:PORT');
  const host = (listen[1] as string).replace(/^\[|\]$/g, '');
  const userA = v.username as string;
  const userB = v['username-b'] ?? `${userA}${SECOND_USER_SUFFIX}`;
  for (const [flag, u] of [['--username', userA], ['--username-b', userB]] as const) {
    const refused = checkWireParams({ username: u, generate: true });
    if (refused) return usage(`${flag}: ${refused.message}`);
  }
  if (userA === userB) return usage('the two BMC users must differ');
  const bmcPort = Number(v['bmc-port']);
  if (!Number.isInteger(bmcPort) || bmcPort < 1 || bmcPort > 65535) return usage('--bmc-port must be 1-65535');
  if (!/^\d{1,2}$/.test(v['ipmi-cipher-suite'] as string)) return usage('--ipmi-cipher-suite is a number');
  const resultTimeout = Number(v['result-timeout']);
  if (!Number.isFinite(resultTimeout) || resultTimeout <= 0) return usage('--result-timeout must be a positive number of seconds');
  const limits: Record<string, number> = {};
  for (const opt of ['max-pending', 'max-pending-per-source', 'inventories-per-minute'] as const) {
    const n = Number(v[opt]);
    if (!/^\d{1,6}$/.test(v[opt] as string) || n < 1) return usage(`--${opt} must be a whole number >= 1`);
    limits[opt] = n;
  }
  if (Boolean(v['tls-cert-file']) !== Boolean(v['tls-key-file'])) return usage('--tls-cert-file and --tls-key-file go together');
  for (const [opt, url] of [['--ironic-url', v['ironic-url']], ['--inspector-url', v['inspector-url']]] as const) {
    if (url !== undefined && !/^https?:\/\/.+/.test(url)) return usage(`${opt} must be an http(s) URL`);
  }

  const state = stateDir(io.env);
  const opened = storeFromOptions(v, io.env);
  if ('usage' in opened) return usage(opened.usage);
  const { store, storePath } = opened;
  let tls: { cert: string; key: string } | { auto: true; names: string[]; certOut: string };
  const base = v['store-path'] ? dirname(storePath) : state;
  if (v['tls-cert-file']) {
    try {
      tls = { cert: readFileSync(v['tls-cert-file'], 'utf8'), key: readFileSync(v['tls-key-file'] as string, 'utf8') };
    } catch (err) {
      return usage(`cannot read the TLS files: ${(err as Error).message}`);
    }
  } else {
    tls = { auto: true, names: v['tls-name'] ?? [], certOut: v['tls-cert-out'] ?? join(base, 'discovery-cert.pem') };
  }
  const recordsDir = v['records-dir'] ?? join(base, 'records');
  await makeDir(recordsDir);
  if (!('cert' in tls)) await makeDir(dirname(tls.certOut));

  const it = envToken(io.env, 'IRONIC_AUTH_TOKEN');
  const log = conductorLog(io.stderr, io.env, { module: 'serve' });
  const prover = new IpmitoolProver(v.ipmitool ? { ipmitoolPath: v.ipmitool } : {});
  const discovery = new DiscoveryService({
    ironic: new IronicEnrollApi({ url: v['ironic-url'], ...(it ? { token: it } : {}) }),
    store, prover, usernames: [userA, userB], bmcPort, cipherSuite: v['ipmi-cipher-suite'] as string,
    ...(v['inspector-url'] ? { inspectorUrl: v['inspector-url'] } : {}),
    resultTimeoutMs: resultTimeout * 1000, log,
    maxPending: limits['max-pending'] as number, maxPendingPerSource: limits['max-pending-per-source'] as number,
    rate: { burst: Math.min(10, limits['inventories-per-minute'] as number), perMinute: limits['inventories-per-minute'] as number },
    onRecord: async (rec) => {
      const file = await writeDiscoveryRecord(recordsDir, rec);
      log(`discovery ${rec.id}: ${rec.status}${rec.failedStep ? ` at ${rec.failedStep}` : ''}; record ${file}`);
    },
  });
  const apiToken = io.env.CONDUCTOR_AUTH_TOKEN ? Secret.fromString(io.env.CONDUCTOR_AUTH_TOKEN) : undefined;
  const authorised = (req: IncomingMessage): boolean => {
    const given = req.headers['x-auth-token'];
    if (!apiToken || typeof given !== 'string' || !given) return false;
    const g = Secret.fromString(given);
    try {
      return g.equals(apiToken);
    } finally {
      g.dispose();
    }
  };
  const passthru = apiToken
    ? createPassthruHandler({
      token: apiToken, log,
      // Kept on disk like the CLI's, so a rotation asked over HTTP leaves the same record.
      rotate: async (node) => {
        const record = await rotate({
          node, ironic: new IronicApi({ url: v['ironic-url'] as string, ...(it ? { token: it } : {}) }), store, prover,
          usernames: [userA, userB], log,
        });
        try {
          log(`rotation of ${node}: ${record.outcome}; record ${await writeRecord(recordsDir, record)}`);
        } catch (err) {
          log(`rotation of ${node}: could not keep the record: ${(err as Error).message}`);
        }
        return record;
      },
    })
    : undefined;
  let server;
  try {
    server = await startDiscoveryServer({ host, port: Number(listen[2]), discovery, tls, authorised, ...(passthru ? { passthru } : {}) });
  } catch (err) {
    io.stderr(`conductor serve: cannot listen on ${v.listen}: ${(err as Error).message}\n`);
    return 1;
  }
  const certificate = 'certOut' in tls ? tls.certOut : v['tls-cert-file'];
  log(`discovery service at ${server.url}/v1/continue${server.fingerprint ? ` (self-signed, SHA-256 ${server.fingerprint}, ${certificate})` : ''}` +
    `${passthru ? '; rotation passthru mounted' : '; no CONDUCTOR_AUTH_TOKEN: rotation passthru and record reads are off'}`);
  io.stdout(JSON.stringify({ listening: server.url, certificate: certificate ?? null, fingerprint: server.fingerprint }) + '\n');

  await new Promise<void>((resolve) => {
    if (io.signal) {
      if (io.signal.aborted) return resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      return;
    }
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('stopping: answered discoveries still waiting for their agent are recorded as failed');
  await server.close();
  return 0;
}
