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
import { parseCommand, UsageError, type Parsed } from '../service/cli-args.js';
import { conductorProver } from './fleet-bmc.js';
import { IronicApi } from './ironic-api.js';
import { conductorLog } from './log.js';
import { rotate } from './rotate.js';
import { fleetMain, isFleetRun } from './fleet-cli.js';
import { CONDUCTOR_COMMANDS, FLEET, helpOf, PROGRAM, ROTATE, SERVE, topHelp } from './commands.js';
import { envToken, stateDir, storeFromOptions, writeRecord, type CliIo } from './options.js';

// What rotate, serve and the fleet share lives in options.ts, so that they need not import each other.
export { envToken, stateDir, storeFromOptions, writeRecord, type CliIo, type StoreOptions } from './options.js';

/** `inband-agent conductor --help`: every command, one line each. */
export const USAGE = topHelp();

const defaultIo = (): CliIo => ({ stdout: (s) => process.stdout.write(s), stderr: Object.assign((s: string) => process.stderr.write(s), { stream: process.stderr }), env: process.env });

export async function main(argvIn: readonly string[], ioIn: CliIo = defaultIo()): Promise<number> {
  const argv = argvIn[0] === 'conductor' ? argvIn.slice(1) : argvIn;
  // `conductor --log-format F COMMAND ...` has always worked (the option common to both programs): it belongs to the command.
  const lead = argv[0]?.startsWith('--log-format') ? (argv[0].includes('=') ? 1 : 2) : 0;
  const [cmd, ...rest] = lead && argv.length > lead ? [argv[lead]!, ...argv.slice(0, lead), ...argv.slice(lead + 1)] : argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (cmd === undefined ? ioIn.stderr : ioIn.stdout)(USAGE + '\n');
    return cmd === undefined ? 2 : 0;
  }
  const spec = CONDUCTOR_COMMANDS.find((c) => c.name[0] === cmd);
  if (!spec) {
    ioIn.stderr(`conductor: unknown command ${JSON.stringify(cmd)} (${CONDUCTOR_COMMANDS.map((c) => c.name[0]).join(', ')}; see ${PROGRAM} --help)\n`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseCommand(spec, rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    ioIn.stderr(`conductor ${cmd}: ${err.message}\n`);
    return 2;
  }
  if (parsed.help) {
    ioIn.stdout(helpOf(spec) + '\n');
    return 0;
  }
  // --log-format is common to both programs; here it travels to the log lines through the environment.
  const format = parsed.values['log-format'];
  const io = typeof format === 'string' ? { ...ioIn, env: { ...ioIn.env, INBAND_LOG_FORMAT: format } } : ioIn;
  if (spec === SERVE) {
    const { serveMain } = await import('./serve.js');
    return serveMain(parsed as Parsed<typeof SERVE.options>, io);
  }
  return rotateMain(parsed as Parsed<typeof ROTATE.options>, io, spec === FLEET);
}

async function rotateMain(parsed: Parsed<typeof ROTATE.options>, io: CliIo, fleetCommand: boolean): Promise<number> {
  const v = parsed.values;
  const name = fleetCommand ? 'fleet' : 'rotate';
  const usage = (msg: string): number => {
    io.stderr(`conductor ${name}: ${msg}\n(see ${PROGRAM} ${name} --help)\n`);
    return 2;
  };
  const fleet = fleetCommand || isFleetRun(parsed.positionals, v);
  if (!fleet && parsed.positionals.length !== 1) return usage('give exactly one NODE (uuid or name), several NODEs, or --all');
  const node = parsed.positionals[0] as string;
  if (!v['ironic-url']) return usage('--ironic-url is required');
  const userA = v.username;
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
    prover: conductorProver(v.ipmitool),
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
