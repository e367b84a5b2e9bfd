/**
 * `inband-agent conductor ...` — the conductor half, run by an operator or a
 * controller next to Ironic.
 *
 *   inband-agent conductor rotate NODE --ironic-url URL [--username U] [--username-b U2]
 *       [--store file|barbican] [--store-path FILE] [--barbican-url URL] [--barbican-project-id ID]
 *       [--records-dir DIR] [--keep-previous] [--clean-timeout S] [--ipmitool PATH]
 *       [--agent-cert FILE] [--allow-plain-args]
 *   inband-agent conductor serve --ironic-url URL [--listen HOST:PORT] [--inspector-url URL] ...
 *       (discovery, scenario 1: conductor/serve.ts)
 *
 * Tokens come from the environment, never from arguments: IRONIC_AUTH_TOKEN,
 * BARBICAN_AUTH_TOKEN (both fall back to OS_AUTH_TOKEN). The rotation record
 * (no secrets) is printed as JSON on stdout and kept under --records-dir.
 * Exit: 0 rotated, 3 rotated with warnings, 1 failed, 2 usage.
 */
import { checkWireParams, SECOND_USER_SUFFIX } from '../service/credential-contract.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IpmitoolProver } from './bmc-proof.js';
import { IronicApi } from './ironic-api.js';
import { conductorLog, takeLogFormat } from './log.js';
import { rotate } from './rotate.js';
import { FLEET_OPTIONS, FLEET_USAGE, fleetMain, isFleetRun } from './fleet-cli.js';
import { envToken, stateDir, storeFromOptions, writeRecord, type CliIo } from './options.js';

// What rotate, serve and the fleet share lives in options.ts, so that they need not import each other.
export { envToken, stateDir, storeFromOptions, writeRecord, type CliIo, type StoreOptions } from './options.js';

export const USAGE = `usage: inband-agent conductor rotate NODE --ironic-url URL [options]
       inband-agent conductor rotate (NODE... | --all [filters]) --ironic-url URL [fleet options]
       inband-agent conductor serve --ironic-url URL [options]   (discovery; see serve --help)

Rotates NODE's BMC credential: a new password for the BMC user Ironic does not
hold (alternating U and U_b), set in-band by the agent through a manual clean,
proven over lanplus, then given to Ironic; the previous user is disabled.

options:
  --ironic-url URL            Ironic API (required)
  --username U                the pair's first user (default ironic; the second is U_b)
  --username-b U2             the pair's second user
  --store file|barbican       where generated passwords live (default file)
  --store-path FILE           file store (default $XDG_STATE_HOME/inband-conductor/secrets.json)
  --barbican-url URL          Barbican API (with --store barbican)
  --barbican-project-id ID    X-Project-Id for Barbican without Keystone
  --records-dir DIR           where rotation records go (default next to the file store)
  --keep-previous             leave the previous BMC user enabled
  --clean-timeout S           seconds to wait for the clean (default 1800)
  --ipmitool PATH             ipmitool binary (default /usr/bin/ipmitool)
  --agent-cert FILE           the running agent's TLS certificate to seal the password to
                              (default: the one Ironic pinned, driver_internal_info.agent_verify_ca)
  --allow-plain-args          with no agent certificate, send the password in plain step args
                              (Ironic keeps them unmasked; the record warns)

${FLEET_USAGE}

environment: IRONIC_AUTH_TOKEN, BARBICAN_AUTH_TOKEN (else OS_AUTH_TOKEN)
exit: 0 rotated, 3 rotated with warnings, 1 failed, 2 usage`;

const defaultIo = (): CliIo => ({ stdout: (s) => process.stdout.write(s), stderr: Object.assign((s: string) => process.stderr.write(s), { stream: process.stderr }), env: process.env });

export async function main(argvIn: readonly string[], ioIn: CliIo = defaultIo()): Promise<number> {
  // --log-format is common to both programs; here it travels to the log lines through the environment.
  let argv: readonly string[];
  let io = ioIn;
  try {
    const taken = takeLogFormat(argvIn);
    argv = taken.rest;
    if (taken.format) io = { ...ioIn, env: { ...ioIn.env, INBAND_LOG_FORMAT: taken.format } };
  } catch (err) {
    ioIn.stderr(`conductor: ${(err as Error).message}\n`);
    return 2;
  }
  const [cmd, ...rest] = argv[0] === 'conductor' ? argv.slice(1) : argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.stdout(USAGE + '\n');
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'serve') {
    const { serveMain } = await import('./serve.js');
    return serveMain(rest, io);
  }
  if (cmd !== 'rotate') {
    io.stderr(`conductor: unknown command ${JSON.stringify(cmd)}\n${USAGE}\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...rest],
      allowPositionals: true,
      strict: true,
      options: {
        'ironic-url': { type: 'string' },
        username: { type: 'string', default: 'ironic' },
        'username-b': { type: 'string' },
        store: { type: 'string', default: 'file' },
        'store-path': { type: 'string' },
        'barbican-url': { type: 'string' },
        'barbican-project-id': { type: 'string' },
        'records-dir': { type: 'string' },
        'keep-previous': { type: 'boolean', default: false },
        'clean-timeout': { type: 'string', default: '1800' },
        ipmitool: { type: 'string' },
        'agent-cert': { type: 'string' },
        'allow-plain-args': { type: 'boolean', default: false },
        ...FLEET_OPTIONS,
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr(`conductor rotate: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout(USAGE + '\n');
    return 0;
  }
  const usage = (msg: string): number => {
    io.stderr(`conductor rotate: ${msg}\n${USAGE}\n`);
    return 2;
  };
  const fleet = isFleetRun(parsed.positionals, v);
  if (!fleet && parsed.positionals.length !== 1) return usage('give exactly one NODE (uuid or name), several NODEs, or --all');
  const node = parsed.positionals[0] as string;
  if (!v['ironic-url']) return usage('--ironic-url is required');
  const userA = v.username as string;
  const userB = v['username-b'] ?? `${userA}${SECOND_USER_SUFFIX}`;
  for (const [flag, u] of [['--username', userA], ['--username-b', userB]] as const) {
    const refused = checkWireParams({ username: u, generate: true });
    if (refused) return usage(`${flag}: ${refused.message}`);
  }
  if (userA === userB) return usage('the two BMC users must differ');
  const cleanTimeout = Number(v['clean-timeout']);
  if (!Number.isFinite(cleanTimeout) || cleanTimeout <= 0) return usage('--clean-timeout must be a positive number of seconds');

  let agentCertificate: string | undefined;
  if (v['agent-cert'] !== undefined) {
    try {
      agentCertificate = await readFile(v['agent-cert'], 'utf8');
    } catch (err) {
      return usage(`--agent-cert ${v['agent-cert']}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  const opened = storeFromOptions(v, io.env);
  if ('usage' in opened) return usage(opened.usage);
  const { store, storePath } = opened;
  if (fleet) {
    return fleetMain(parsed.positionals, v, {
      io, usage, store, storePath, usernames: [userA, userB], cleanTimeoutMs: cleanTimeout * 1000,
      recordsDir: v['records-dir'] ?? join(v['store-path'] ? join(storePath, '..') : stateDir(io.env), 'records'),
      stateDir: v['state-dir'] ?? join(v['store-path'] ? join(storePath, '..') : stateDir(io.env), 'journals'),
      ...(agentCertificate !== undefined ? { agentCertificate } : {}),
    });
  }
  const it = envToken(io.env, 'IRONIC_AUTH_TOKEN');
  const ironic = new IronicApi({ url: v['ironic-url'], ...(it ? { token: it } : {}) });
  const record = await rotate({
    node, ironic, store,
    prover: new IpmitoolProver(v.ipmitool ? { ipmitoolPath: v.ipmitool } : {}),
    usernames: [userA, userB],
    retirePrevious: !v['keep-previous'],
    cleanTimeoutMs: cleanTimeout * 1000,
    ...(agentCertificate !== undefined ? { agentCertificate } : {}),
    allowPlainArgs: v['allow-plain-args'] === true,
    log: conductorLog(io.stderr, io.env, { module: 'rotate' }),
  });
  const dir = v['records-dir'] ?? join(v['store-path'] ? join(storePath, '..') : stateDir(io.env), 'records');
  try {
    const file = await writeRecord(dir, record);
    io.stderr(`rotation record: ${file}\n`);
  } catch (err) {
    io.stderr(`conductor rotate: could not keep the record in ${dir}: ${(err as Error).message}\n`);
  }
  io.stdout(JSON.stringify(record, null, 2) + '\n');
  if (record.outcome !== 'rotated') {
    io.stderr(`conductor rotate: FAILED at ${record.failedStep}: ${record.error}\n` +
      `  Ironic logs in as ${record.current.username ?? '(unknown)'} (${record.current.note})\n`);
    return 1;
  }
  return record.warnings.length ? 3 : 0;
}

/** `<dir>/<node uuid or ident>-<started>.json`, 0600, written whole (temp + fsync + rename). */
