/**
 * The `inband-agent` command line. bin/inband-agent.js imports the compiled
 * file and calls {@link main}; tests call it in-process with their own streams.
 *
 *   inband-agent serve [options]                 the daemon (IPA-compatible API, lookup, heartbeat)
 *   inband-agent bmc raw NETFN CMD [DATA...]     one raw IPMI request, like `ipmitool raw`
 *   inband-agent bmc info [--json]               device, IPMI version, LAN channels, user slots
 *   inband-agent set-credentials ...             create/update a BMC user in-band, verified
 *
 * Every subcommand takes the backend flags. Heavy modules load only in the
 * subcommand that needs them.
 */
import type { Readable } from 'node:stream';
import { BACKEND_OPTIONS, ConfigError, ipmiCallOptions, loadConfig, optionsHelp, optionsSummary, type Config, type LoadedConfig } from './config.js';
import type { AgentLogger } from './logger.js';
import { journalPrefix } from '../service/log-line.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { VERSION } from '../service/version.js';
import { ServiceError } from '../service/errors.js';
import type { Selection } from '../ipmi-kcs/select.js';
import { SIMULATED_NOTE, stampBackend } from './backend.js';
import { checkWireParams, fieldForFlag, flagValue, privilegeName } from '../service/credential-contract.js';
import { PasswordInputError, readPassword, refusePasswordInArgv } from './password-input.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: Readable;
  env: Readonly<Record<string, string | undefined>>;
  /** Kernel command line path (default /proc/cmdline); null skips it. */
  cmdlinePath: string | null;
  /** Installs SIGINT/SIGTERM handlers for serve (default true). */
  signals: boolean;
  /** Device nodes the `auto` backend looks for (default /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0); tests point it at an empty directory. */
  ipmiDevices?: readonly string[];
}


const TOP_HELP = `inband-agent ${VERSION}: sets a bare-metal node's BMC (IPMI) users in-band through /dev/ipmi0,
and serves ironic-python-agent's API so an unmodified Ironic can drive it.

Usage:
  inband-agent serve [options]                    run the daemon (see: inband-agent serve --help)
  inband-agent bmc raw NETFN CMD [DATA...]        send one raw IPMI request (hex bytes, like ipmitool raw)
  inband-agent bmc info [--json]                  show the BMC: device, IPMI version, LAN channels, users
  inband-agent set-credentials --username NAME (--password-stdin | --generate) [options]
                                                  create or update a BMC user and verify it
  inband-agent user list [CHANNEL]                list users with ipmitool's columns
  inband-agent user enable|disable ID             enable or disable a user (never the last administrator)
  inband-agent user priv ID LEVEL [CHANNEL]       set a user's privilege limit (name or number)
  inband-agent user test ID [16|20] --password-stdin
                                                  test a user's password (changes nothing)
  inband-agent channel info [CHANNEL]             show a channel, like ipmitool channel info
  inband-agent mc info                            show the BMC's device ID, like ipmitool mc info
  inband-agent conductor rotate NODE --ironic-url URL [options]
                                                  conductor side: rotate a node's BMC password through Ironic
  inband-agent conductor serve --ironic-url URL [options]
                                                  conductor side: discovery service and rotation passthru
  inband-agent --version | --help

Every BMC command takes the backend options (--backend, --device, --vm-codec, --sim-profile, --sim-state-file)
and -v/--trace (user, channel, mc: each IPMI request and response on stderr, passwords masked).
`;

const SERVE_HELP = `Usage: inband-agent serve [options]

Serves ironic-python-agent's /v1 API (default port 9999). With --api-url (and without --standalone)
it looks the node up in Ironic, heartbeats, and serves HTTPS with an auto-generated certificate.

Security: POST /v1/commands needs ?agent_token= (from lookup, ipa-agent-token or --agent-token-file).
GET /v1/commands is open by default because Ironic 21.x polls it without a token; command records never
carry secrets. Use --require-token-for-reads to require the token there too. With no token at all,
commands are accepted only from loopback unless --allow-remote-commands.

Options (highest precedence first: flag > env > kernel command line > config file > default):
${optionsHelp()}
`;

const RAW_HELP = `Usage: inband-agent bmc raw NETFN CMD [DATA...] [backend options]

Sends one IPMI request over the system interface and prints the response data bytes in hex.
Bytes are hex, with or without 0x (e.g. "bmc raw 0x06 0x01" is Get Device ID, IPMI v2.0 §20.1).
A non-zero completion code is printed with its IPMI spec name and the exit status is 1.

Backend options (inband-agent serve --help tells every source):
${optionsSummary(BACKEND_OPTIONS)}
`;

const INFO_HELP = `Usage: inband-agent bmc info [--json] [backend options]

Shows the BMC's device ID, IPMI version, LAN channels and user slots (names, enabled state,
per-channel privilege). Never shows passwords (IPMI cannot read them back).

Backend options (inband-agent serve --help tells every source):
${optionsSummary(BACKEND_OPTIONS)}
`;

const SET_HELP = `Usage: inband-agent set-credentials --username NAME (--password-stdin | --generate) [options]

Creates or updates a BMC user in-band: picks the slot, writes name, password, privilege and channel
access in a vendor-safe order, verifies by reading back, and rolls back on failure.

  --username NAME          user name: 1-16 ASCII letters, digits, _ . - (not starting with . or -)
  --password-stdin         on a terminal, prompt for the password (not echoed) and for it again to
                           confirm; otherwise read it from the first line of stdin. Never from an
                           argument: --password and --password-stdin=VALUE are refused
  --generate               generate a random password the BMC accepts
  --show-secret            print a generated password (otherwise it is not shown anywhere)
  --privilege LEVEL        administrator (default), operator or user (or 4, 3, 2)
  --slot N                 user ID 2-63 to use (default: the user with this name, else a free slot)
  --channel N              LAN channel 1-11 to grant access on; repeat for several (default: all LAN channels)
  --enable-channel-access  also enable IPMI messaging on the channel(s) where it blocks login
  --allow-fixed-slot       allow reusing a slot whose name the BMC fixes, if the name matches
  --allow-lockout          allow leaving a LAN channel without the enabled administrator it had
                           (demoting, renaming or reusing the last one's slot); refused otherwise
  --json                   print the result as JSON

Backend options:
${optionsHelp(BACKEND_OPTIONS)}
`;

class UsageError extends Error {}

/**
 * set-credentials' contract flags as wire params (credential-contract.ts):
 * each flag the contract declares, its text turned into the field's type.
 * The password (stdin) is not among them.
 */
function credentialParamsFromFlags(own: Map<string, string[] | true>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [flag, value] of own) {
    const f = fieldForFlag(flag);
    if (!f || f.flagKind === 'stdin') continue;
    if (f.flagKind === 'bool') {
      if (f.wire !== 'generate') params[f.wire] = true;
      continue;
    }
    const texts = value === true ? [] : value;
    params[f.wire] = f.flagKind === 'multi' ? texts.map((t) => flagValue(f, t)) : flagValue(f, texts[0] ?? '');
  }
  if (own.has('--generate')) params.generate = true;
  return params;
}

function write(s: NodeJS.WritableStream, text: string): void {
  s.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Splits a subcommand's own flags from the config flags. `spec` maps a flag to 'bool' | 'value' | 'multi'. */
function splitFlags(argv: readonly string[], spec: Record<string, 'bool' | 'value' | 'multi'>): { own: Map<string, string[] | true>; rest: string[]; positionals: string[] } {
  const own = new Map<string, string[] | true>();
  const rest: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const kind = spec[name];
    if (!kind) {
      rest.push(a);
      // A config flag's separate value travels with it.
      if (eq < 0 && i + 1 < argv.length && !argv[i + 1]!.startsWith('--') && !isBoolConfigFlag(name)) rest.push(argv[++i]!);
      continue;
    }
    if (kind === 'bool') {
      own.set(name, true);
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    const prev = own.get(name);
    own.set(name, kind === 'multi' && Array.isArray(prev) ? [...prev, value] : [value]);
  }
  return { own, rest, positionals };
}

const BOOL_CONFIG = new Set(['--insecure', '--standalone', '--listen-tls', '--enable-auto-tls', '--require-token-for-reads', '--allow-remote-commands']);
function isBoolConfigFlag(name: string): boolean {
  return BOOL_CONFIG.has(name) || name.startsWith('--no-');
}

function parseByte(text: string, what: string): number {
  const t = text.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{1,2}$/.test(t)) throw new UsageError(`${what}: "${text}" is not a hex byte (00-ff)`);
  return parseInt(t, 16);
}

const hex = (n: number): string => n.toString(16).padStart(2, '0');

async function makeLogger(loaded: LoadedConfig, io: CliIo, forServe: boolean): Promise<AgentLogger> {
  const { createLogger } = await import('./logger.js');
  // Subcommands print results on stdout; their log lines go to stderr, warnings and worse unless asked.
  const level = forServe || loaded.sources.log_level !== 'default' ? loaded.config.log_level : 'warn';
  // The daemon writes each loop turn's lines in one write (the request log under load; logger.ts);
  // a subcommand's few lines go out as they are logged.
  return createLogger({ level: level as never, stream: forServe ? io.stdout : io.stderr, format: loaded.config.log_format as never, env: io.env, ...(forServe ? { buffered: true } : {}) });
}

/**
 * Opens the backend the flags ask for. `auto` may fall back to the simulated BMC
 * here (a laptop has no /dev/ipmi0), never for a device the user named; every
 * output then says it came from the simulation.
 */
async function openBackend(config: Config, logger: AgentLogger, io: CliIo): Promise<{ transport: Transport; selection: Selection }> {
  const { openBackendFromConfig } = await import('./backend.js');
  return openBackendFromConfig(config, logger.log.child({ module: 'backend' }), io.ipmiDevices ? { deviceCandidates: io.ipmiDevices } : {});
}

function load(argv: readonly string[], io: CliIo): LoadedConfig {
  return loadConfig({ argv, env: io.env, cmdlinePath: io.cmdlinePath });
}

async function cmdServe(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    write(io.stdout, SERVE_HELP);
    return 0;
  }
  const loaded = load(argv, io);
  if (loaded.positionals.length) throw new UsageError(`serve takes no arguments (got "${loaded.positionals[0]}")`);
  // Heap sizing and the optimizing compiler while the daemon loads (startup.ts says why, with figures).
  const { startupV8 } = await import('./startup.js');
  const resumeOptimizer = startupV8();
  const logger = await makeLogger(loaded, io, true);
  const { serve } = await import('./serve.js');
  let agent;
  try {
    agent = await serve({ loaded, logger, ...(io.ipmiDevices ? { ipmiDevices: io.ipmiDevices } : {}) });
  } finally {
    // serve resolves once the app and the engine are loaded: hot paths may be optimized from now on.
    setImmediate(resumeOptimizer);
  }
  const onSignal = (sig: string) => {
    logger.log.info(`${sig}: shutting down`);
    void agent.close();
  };
  if (io.signals) {
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  }
  await agent.stopped;
  await agent.close();
  // A conductor client that gave up (lookup timeout) is a failure: systemd's Restart= boots a fresh attempt.
  return agent.fatal ? 1 : 0;
}

async function cmdBmcRaw(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    write(io.stdout, RAW_HELP);
    return 0;
  }
  const { rest, positionals } = splitFlags(argv, {});
  if (positionals.length < 2) throw new UsageError('bmc raw needs NETFN and CMD (see inband-agent bmc raw --help)');
  const netFn = parseByte(positionals[0]!, 'NETFN');
  const cmd = parseByte(positionals[1]!, 'CMD');
  const data = positionals.slice(2).map((b, i) => parseByte(b, `DATA[${i}]`));
  const loaded = load(rest, io);
  const logger = await makeLogger(loaded, io, false);
  const { transport, selection } = await openBackend(loaded.config, logger, io);
  try {
    const rsp = await transport.send({ netFn, cmd, data });
    // stdout carries only the bytes (scripts parse them): the simulation is named on stderr.
    if (selection.kind === 'simulated') write(io.stderr, `${SIMULATED_NOTE} (${selection.reason})`);
    if (rsp.completionCode !== 0) {
      const { completionCodeName } = await import('../ipmi-kcs/completion-codes.js');
      write(io.stderr, `Unable to send RAW command (netfn=0x${netFn.toString(16)} cmd=0x${cmd.toString(16)} rsp=0x${hex(rsp.completionCode)}): ${completionCodeName(rsp.completionCode, netFn, cmd)}`);
      return 1;
    }
    const bytes = [...rsp.data].map(hex);
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 16) lines.push(' ' + bytes.slice(i, i + 16).join(' '));
    write(io.stdout, lines.join('\n') || '');
    if (rsp.truncated) write(io.stderr, 'warning: the response was truncated by the transport');
    return 0;
  } finally {
    await transport.close();
  }
}

async function credentialService(loaded: LoadedConfig, logger: AgentLogger, transport: Transport) {
  const { CredentialService } = await import('../service/credential-service.js');
  return new CredentialService({ transport, logger: logger.log.child({ module: 'service' }), stateDir: loaded.config.state_dir, ...ipmiCallOptions(loaded.config) });
}

async function cmdBmcInfo(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    write(io.stdout, INFO_HELP);
    return 0;
  }
  const { own, rest, positionals } = splitFlags(argv, { '--json': 'bool' });
  if (positionals.length) throw new UsageError(`bmc info takes no arguments (got "${positionals[0]}")`);
  const loaded = load(rest, io);
  const logger = await makeLogger(loaded, io, false);
  const { transport, selection } = await openBackend(loaded.config, logger, io);
  try {
    const service = await credentialService(loaded, logger, transport);
    const info = stampBackend(await service.getInfo(), selection.kind);
    if (own.has('--json')) {
      const { scrubResult } = await import('./api/commands/bmc.js');
      write(io.stdout, JSON.stringify(scrubResult(info), null, 2));
      return 0;
    }
    const simulated = selection.kind === 'simulated';
    const d = info.device;
    const out: string[] = simulated ? [SIMULATED_NOTE] : [];
    out.push(`Backend:          ${transport.kind} (${transport.description})${simulated ? `: SIMULATED, not a real BMC; ${selection.reason}` : ''}`);
    out.push(`Device ID:        0x${hex(d.deviceId)} rev ${d.deviceRevision}, firmware ${d.firmware}`);
    out.push(`Manufacturer:     ${d.manufacturerId} (0x${d.manufacturerId.toString(16)}), product 0x${d.productId.toString(16)}`);
    out.push(`IPMI version:     ${info.ipmiVersion}`);
    out.push(`BMC LAN:          ${[info.lan.address && `IPv4 ${info.lan.address}`, info.lan.v6address && `IPv6 ${info.lan.v6address}`, info.lan.mac && `MAC ${info.lan.mac}`].filter(Boolean).join(', ') || 'unknown'}${info.lan.channel !== undefined ? ` (channel ${info.lan.channel})` : ''}${simulated ? ' (simulated, not a real address)' : ''}`);
    out.push(`Users:            ${info.enabledUsers} enabled of ${info.maxUsers} slots (${info.fixedNameUsers} fixed names)`);
    out.push('LAN channels:');
    for (const c of info.lanChannels) {
      const acc = c.access.nonVolatile ?? c.access.volatile;
      out.push(`  ${String(c.channel).padStart(2)}  ${c.medium}, ${c.sessionSupport}, ${c.activeSessions} active sessions${acc ? `, access ${acc.accessMode}, limit ${acc.privilegeLimit}` : ''}`);
    }
    out.push('User slots:');
    out.push('  ID  Name              Enabled  Access per channel');
    for (const u of info.users) {
      const access = Object.entries(u.access).map(([ch, a]) => `ch${ch}:${a.privilege}${a.ipmiMessaging ? '' : '(no-ipmi)'}`).join(' ');
      out.push(`  ${String(u.id).padStart(2)}  ${(u.name || '(empty)').padEnd(16)}  ${(u.enabled ? 'yes' : 'no').padEnd(7)}  ${access}${u.fixedName ? '  [fixed name]' : ''}`);
    }
    write(io.stdout, out.join('\n'));
    return 0;
  } finally {
    await transport.close();
  }
}

async function cmdSetCredentials(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    write(io.stdout, SET_HELP);
    return 0;
  }
  // Before anything else reads argv: no path may echo or keep a password typed there.
  try {
    refusePasswordInArgv(argv, '--password-stdin');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { own, rest, positionals } = splitFlags(argv, {
    '--username': 'value', '--password-stdin': 'bool', '--generate': 'bool', '--show-secret': 'bool', '--privilege': 'value',
    '--slot': 'value', '--channel': 'multi', '--json': 'bool', '--enable-channel-access': 'bool', '--allow-fixed-slot': 'bool',
    '--allow-lockout': 'bool',
  });
  // The stray argument is not echoed: it may well be a password.
  if (positionals.length) throw new UsageError(`set-credentials takes no positional arguments (got ${positionals.length}); the password is read with --password-stdin, never from an argument`);
  const fromStdin = own.has('--password-stdin');
  const generate = own.has('--generate');
  if (fromStdin === generate) throw new UsageError('give exactly one of --password-stdin and --generate');
  // Every flag is checked by the credential contract (service/credential-contract.ts)
  // before the backend is opened: a refused value names its flag and touches nothing.
  const params = credentialParamsFromFlags(own);
  const refused = checkWireParams({ ...params, ...(fromStdin ? { password: 'x' } : {}) });
  if (refused) throw new UsageError(`${refused.flag ?? refused.field}: ${refused.message}`);
  const username = params.username as string;
  const privilege = params.privilege === undefined ? undefined : privilegeName(params.privilege);
  const slot = params.slot as number | undefined;
  const channels = (params.channels as number[] | undefined) ?? [];

  const loaded = load(rest, io);
  const logger = await makeLogger(loaded, io, false);
  const { Secret } = await import('../service/secret.js');
  let password: import('../service/secret.js').Secret | undefined;
  if (fromStdin) {
    let line: string;
    try {
      line = await readPassword({ stdin: io.stdin, prompt: io.stderr, flag: '--password-stdin', confirm: true });
    } catch (e) {
      if (e instanceof PasswordInputError) throw new UsageError(e.message);
      throw e;
    }
    if (!line) throw new UsageError('--password-stdin: stdin gave an empty password');
    const problem = checkWireParams({ ...params, password: line });
    if (problem) throw new UsageError(`--password-stdin: ${problem.message}`);
    logger.redactor.register(line);
    password = Secret.fromString(line);
  }
  // Before the BMC is opened: a change that cannot be journaled is refused, not half-made.
  await (await import('../service/journal.js')).checkStateDir(loaded.config.state_dir);
  const { transport, selection } = await openBackend(loaded.config, logger, io);
  try {
    const service = await credentialService(loaded, logger, transport);
    await service.recover();
    const simulated = selection.kind === 'simulated';
    const result = stampBackend(await service.setCredentials({
      username,
      ...(password ? { password } : { generate: true }),
      ...(privilege ? { privilege } : {}),
      ...(slot !== undefined ? { slot } : {}),
      ...(channels.length ? { channels } : {}),
      ...(own.has('--enable-channel-access') ? { enableChannelAccess: true } : {}),
      ...(own.has('--allow-fixed-slot') ? { allowFixedSlot: true } : {}),
      ...(own.has('--allow-lockout') ? { allowLockout: true } : {}),
    }), selection.kind);
    const showSecret = own.has('--show-secret') && result.generatedPassword !== undefined;
    if (own.has('--json')) {
      const { scrubResult } = await import('./api/commands/bmc.js');
      const obj = scrubResult(result) as Record<string, unknown>;
      obj.password_generated = generate;
      if (showSecret) obj.generated_password = result.generatedPassword!.reveal();
      write(io.stdout, JSON.stringify(obj, null, 2));
    } else {
      const v = result.verified;
      const out = [
        ...(simulated ? [SIMULATED_NOTE] : []),
        `${result.changed ? 'Set' : 'Already in place:'} user ${result.userId} "${result.username}" (${result.privilege}) on LAN channel${result.channels.length === 1 ? '' : 's'} ${result.channels.join(', ')}; slot ${result.slot}, ${result.passwordSize}-byte password${generate ? ' (generated)' : ''}`,
        ...result.actions.map((a) => `  ${a}`),
        `Verified${simulated ? ' on the SIMULATED BMC only' : ''}: password test ${v.passwordTest}${v.passwordTestCode !== undefined ? ` (cc 0x${hex(v.passwordTestCode)})` : ''}, name ${v.name ? 'ok' : 'MISMATCH'}, enabled ${v.enabled ? 'yes' : 'NO'} (${v.enabledSource}), access ${Object.entries(v.access).map(([c, ok]) => `ch${c} ${ok ? 'ok' : 'MISMATCH'}`).join(', ')}`,
        ...(result.bmc.address ? [`BMC address: ${result.bmc.address}${result.bmc.lanChannel !== undefined ? ` (channel ${result.bmc.lanChannel})` : ''}${simulated ? ' (simulated, not a real address)' : ''}`] : []),
        ...result.warnings.filter((w) => w !== SIMULATED_NOTE).map((w) => `warning: ${w}`),
      ];
      if (generate) out.push(showSecret ? `Generated password: ${result.generatedPassword!.reveal()}` : 'A password was generated and set; it is not shown (use --show-secret to print it).');
      write(io.stdout, out.join('\n'));
    }
    result.generatedPassword?.dispose();
    return 0;
  } finally {
    password?.dispose();
    await transport.close();
  }
}

export async function main(argv: readonly string[], ioIn: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = {
    stdout: ioIn.stdout ?? process.stdout,
    stderr: ioIn.stderr ?? process.stderr,
    stdin: ioIn.stdin ?? process.stdin,
    env: ioIn.env ?? process.env,
    cmdlinePath: ioIn.cmdlinePath === undefined ? '/proc/cmdline' : ioIn.cmdlinePath,
    signals: ioIn.signals ?? true,
    ...(ioIn.ipmiDevices ? { ipmiDevices: ioIn.ipmiDevices } : {}),
  };
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        write(sub === undefined ? io.stderr : io.stdout, TOP_HELP);
        return sub === undefined ? 2 : 0;
      case '--version':
      case 'version':
        write(io.stdout, `inband-agent ${VERSION}`);
        return 0;
      case 'serve':
        return await cmdServe(rest, io);
      case 'bmc': {
        const [what, ...more] = rest;
        if (what === 'raw') return await cmdBmcRaw(more, io);
        if (what === 'info') return await cmdBmcInfo(more, io);
        if (what === '--help' || what === '-h') {
          write(io.stdout, `${RAW_HELP}\n${INFO_HELP}`);
          return 0;
        }
        throw new UsageError(`unknown bmc subcommand "${what ?? ''}" (raw, info)`);
      }
      case 'set-credentials':
        return await cmdSetCredentials(rest, io);
      case 'user':
      case 'channel':
      case 'mc':
        return await (await import('./cli/bmc-commands.js')).runBmcCommand(sub, rest, io);
      default:
        throw new UsageError(`unknown command "${sub}" (serve, bmc, set-credentials, user, channel, mc, conductor; see --help)`);
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      write(io.stderr, `${journalPrefix(io.env, io.stderr, 'error')}inband-agent: ${e.message}`);
      return 2;
    }
    const err = e as Error & { code?: unknown };
    const code = e instanceof ServiceError ? `${e.code}: ` : '';
    write(io.stderr, `${journalPrefix(io.env, io.stderr, 'error')}inband-agent: ${sub ?? ''} failed: ${code}${err.message}`);
    return 1;
  }
}
