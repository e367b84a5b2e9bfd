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
import type { Parsed } from '../service/cli-args.js';
import { helpOf, SERVE } from './commands.js';
import { Secret } from '../service/secret.js';
import { envToken, stateDir, storeFromOptions, writeRecord } from './options.js';
import { conductorProver } from './fleet-bmc.js';
import { DiscoveryService } from './discovery-service.js';
import { startDiscoveryServer, writeDiscoveryRecord } from './discovery-server.js';
import { IronicApi } from './ironic-api.js';
import { IronicEnrollApi } from './ironic-enroll.js';
import { conductorLog } from './log.js';
import { createPassthruHandler } from './passthru.js';
import { rotate } from './rotate.js';
import { makeDir } from '../service/journal.js';

/** `inband-agent conductor serve --help`. */
export const SERVE_USAGE = helpOf(SERVE);

export interface ServeIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Stops the service (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Runs the service with the options conductor/cli.ts parsed (commands.ts SERVE). */
export async function serveMain(parsed: Parsed<typeof SERVE.options>, io: ServeIo): Promise<number> {
  const usage = (msg: string): number => {
    io.stderr(`conductor serve: ${msg}\n(see inband-agent conductor serve --help)\n`);
    return 2;
  };
  if (parsed.positionals.length) return usage(`serve takes no arguments (got ${parsed.positionals.length})`);
  const v = parsed.values;
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
  const prover = conductorProver(v.ipmitool);
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
