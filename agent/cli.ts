/**
 * The `inband-agent` command line. bin/inband-agent.js imports the compiled
 * file and calls {@link main}; tests call it in-process with their own streams.
 *
 *   inband-agent serve [options]                 the daemon (IPA-compatible API, lookup, heartbeat)
 *   inband-agent bmc raw NETFN CMD [DATA...]     one raw IPMI request, like `ipmitool raw`
 *   inband-agent bmc info [--json]               device, IPMI version, LAN channels, user slots
 *   inband-agent set-credentials ...             create/update a BMC user in-band, verified
 *   inband-agent user|channel|mc ...             ipmitool's habits (cli/bmc-commands.ts)
 *
 * Every command is declared once in cli/commands.ts (its options, its help)
 * and parsed by the shared parser (service/cli-args.ts). Every BMC command
 * takes the backend flags and -v/--trace. Heavy modules load only in the
 * subcommand that needs them.
 */
import type { Readable } from 'node:stream';
import { configFlags, ipmiCallOptions, loadConfig, optionsHelp, type Config, type LoadedConfig } from './config.js';
import { formatCommandList, parseCommand, UsageError, type OptionSpecs, type Parsed } from '../service/cli-args.js';
import { BMC_INFO, BMC_RAW, helpOf, PROGRAM, SERVE, SET_CREDENTIALS, topHelp } from './cli/commands.js';
import type { AgentLogger } from './logger.js';
import { journalPrefix } from '../service/log-line.js';
import type { Transport } from '../ipmi-kcs/transport.js';
import { VERSION } from '../service/version.js';
import { ServiceError } from '../service/errors.js';
import type { Selection } from '../ipmi-kcs/select.js';
import { SIMULATED_NOTE, stampBackend } from './backend.js';
import { checkWireParams, fieldForFlag, flagValue, privilegeName } from '../service/credential-contract.js';
import { PasswordInputError, readPassword, refusePasswordInArgv } from './password-input.js';
import { readFirstLineSync, stdWriter } from './stdio.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: Readable;
  /** stdin's first line read directly (agent/stdio.ts), or undefined to read the `stdin` stream. */
  stdinLineSync?: () => string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  /** Kernel command line path (default /proc/cmdline); null skips it. */
  cmdlinePath: string | null;
  /** Installs SIGINT/SIGTERM handlers for serve (default true). */
  signals: boolean;
  /** Device nodes the `auto` backend looks for (default /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0); tests point it at an empty directory. */
  ipmiDevices?: readonly string[];
}

/**
 * set-credentials' contract flags as wire params (credential-contract.ts):
 * each flag the contract declares, its text turned into the field's type.
 * The password (stdin) is not among them.
 */
function credentialParamsFromFlags(args: Parsed<OptionSpecs>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const name of args.given) {
    const f = fieldForFlag(`--${name}`);
    if (!f || f.flagKind === 'stdin') continue;
    const v = args.values[name];
    if (f.flagKind === 'bool') params[f.wire] = true;
    else if (f.flagKind === 'multi') params[f.wire] = (v as string[]).map((t) => flagValue(f, t));
    else params[f.wire] = flagValue(f, v as string);
  }
  return params;
}

function write(s: NodeJS.WritableStream, text: string): void {
  s.write(text.endsWith('\n') ? text : `${text}\n`);
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
  // The daemon moves its lines to winston when it loads the rest of itself (serve.ts); a subcommand never loads it.
  return createLogger({ level, stream: forServe ? io.stdout : io.stderr, format: loaded.config.log_format, env: io.env, ...(forServe ? { buffered: true } : {}) });
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

/** The configuration: the command's config flags over the environment, the kernel command line and the config file. */
function load(args: Parsed<OptionSpecs>, io: CliIo): LoadedConfig {
  return loadConfig({ flags: configFlags(args.values, args.given), env: io.env, cmdlinePath: io.cmdlinePath });
}

/** The backend's transport, tracing each exchange on stderr with -v / --trace (service/ipmi-trace.ts masks the password bytes). */
async function traced(transport: Transport, args: Parsed<OptionSpecs>, io: CliIo): Promise<Transport> {
  if (args.values.trace !== true) return transport;
  const { TracingTransport } = await import('../service/ipmi-trace.js');
  return new TracingTransport(transport, (line) => io.stderr.write(`${line}\n`));
}

async function cmdServe(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommand(SERVE, argv);
  if (args.help || args.values['help-all']) {
    write(io.stdout, args.values['help-all'] ? `${helpOf(SERVE)}\n\nevery option (highest precedence first: flag > env > kernel command line > config file > default):\n${optionsHelp()}` : helpOf(SERVE));
    return 0;
  }
  if (args.positionals.length) throw new UsageError(`serve takes no arguments (got "${args.positionals[0]}")`);
  const loaded = load(args, io);
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
  const args = parseCommand(BMC_RAW, argv);
  if (args.help) {
    write(io.stdout, helpOf(BMC_RAW));
    return 0;
  }
  const { positionals } = args;
  if (positionals.length < 2) throw new UsageError('bmc raw needs NETFN and CMD (see inband-agent bmc raw --help)');
  const netFn = parseByte(positionals[0]!, 'NETFN');
  const cmd = parseByte(positionals[1]!, 'CMD');
  const data = positionals.slice(2).map((b, i) => parseByte(b, `DATA[${i}]`));
  const loaded = load(args, io);
  const logger = await makeLogger(loaded, io, false);
  const { transport, selection } = await openBackend(loaded.config, logger, io);
  try {
    const rsp = await (await traced(transport, args, io)).send({ netFn, cmd, data });
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
  const args = parseCommand(BMC_INFO, argv);
  if (args.help) {
    write(io.stdout, helpOf(BMC_INFO));
    return 0;
  }
  const { positionals } = args;
  if (positionals.length) throw new UsageError(`bmc info takes no arguments (got "${positionals[0]}")`);
  const loaded = load(args, io);
  const logger = await makeLogger(loaded, io, false);
  const { transport, selection } = await openBackend(loaded.config, logger, io);
  try {
    const service = await credentialService(loaded, logger, await traced(transport, args, io));
    const info = stampBackend(await service.getInfo(), selection.kind);
    if (args.values.json) {
      const { bmcInfoWire } = await import('./api/wire.js');
      write(io.stdout, JSON.stringify(bmcInfoWire(info), null, 2));
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
    write(io.stdout, helpOf(SET_CREDENTIALS));
    return 0;
  }
  // Before anything else reads argv: no path may echo or keep a password typed there.
  try {
    refusePasswordInArgv(argv, '--password-stdin');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const args = parseCommand(SET_CREDENTIALS, argv);
  const own: ReadonlySet<string> = args.given;
  // The stray argument is not echoed: it may well be a password.
  if (args.positionals.length) throw new UsageError(`set-credentials takes no positional arguments (got ${args.positionals.length}); the password is read with --password-stdin, never from an argument`);
  const fromStdin = own.has('password-stdin');
  const generate = own.has('generate');
  if (fromStdin === generate) throw new UsageError('give exactly one of --password-stdin and --generate');
  // Every flag is checked by the credential contract (service/credential-contract.ts)
  // before the backend is opened: a refused value names its flag and touches nothing.
  const params = credentialParamsFromFlags(args);
  const refused = checkWireParams({ ...params, ...(fromStdin ? { password: 'x' } : {}) });
  if (refused) throw new UsageError(`${refused.flag ?? refused.field}: ${refused.message}`);
  const username = params.username as string;
  const privilege = params.privilege === undefined ? undefined : privilegeName(params.privilege);
  const slot = params.slot as number | undefined;
  const channels = (params.channels as number[] | undefined) ?? [];

  const loaded = load(args, io);
  const logger = await makeLogger(loaded, io, false);
  const { Secret } = await import('../service/secret.js');
  let password: import('../service/secret.js').Secret | undefined;
  if (fromStdin) {
    let line: string;
    try {
      // A pipe or file is read directly, before io.stdin (building Node's stream) is touched.
      line = io.stdinLineSync?.() ?? await readPassword({ stdin: io.stdin, prompt: io.stderr, flag: '--password-stdin', confirm: true });
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
    const service = await credentialService(loaded, logger, await traced(transport, args, io));
    await service.recover();
    const simulated = selection.kind === 'simulated';
    const result = stampBackend(await service.setCredentials({
      username,
      ...(password ? { password } : { generate: true }),
      ...(privilege ? { privilege } : {}),
      ...(slot !== undefined ? { slot } : {}),
      ...(channels.length ? { channels } : {}),
      ...(own.has('enable-channel-access') ? { enableChannelAccess: true } : {}),
      ...(own.has('allow-fixed-slot') ? { allowFixedSlot: true } : {}),
      ...(own.has('allow-lockout') ? { allowLockout: true } : {}),
    }), selection.kind);
    const showSecret = own.has('show-secret') && result.generatedPassword !== undefined;
    if (own.has('json')) {
      const { setCredentialsWire } = await import('./api/wire.js');
      const obj = { ...setCredentialsWire(result, generate), ...(showSecret ? { generated_password: result.generatedPassword!.reveal() } : {}) };
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
  const [sub, ...rest] = argv;
  // One-shot commands write and read the fds directly where Node's streams would
  // only cost start-up (agent/stdio.ts); the daemon keeps Node's streams.
  const oneShot = sub !== 'serve';
  const io: CliIo = {
    stdout: ioIn.stdout ?? (oneShot ? stdWriter(1) : process.stdout),
    stderr: ioIn.stderr ?? (oneShot ? stdWriter(2) : process.stderr),
    ...(!ioIn.stdin && oneShot ? { stdinLineSync: () => readFirstLineSync(0) } : {}),
    // A getter: process.stdin builds its stream (and loads fs's stream classes) when first read,
    // ~6 ms of a daemon's start on the host, and only the password and `bmc raw -` read it.
    get stdin() {
      return ioIn.stdin ?? process.stdin;
    },
    env: ioIn.env ?? process.env,
    cmdlinePath: ioIn.cmdlinePath === undefined ? '/proc/cmdline' : ioIn.cmdlinePath,
    signals: ioIn.signals ?? true,
    ...(ioIn.ipmiDevices ? { ipmiDevices: ioIn.ipmiDevices } : {}),
  };
  try {
    switch (sub) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        write(sub === undefined ? io.stderr : io.stdout, topHelp(VERSION));
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
        if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
          write(what === undefined ? io.stderr : io.stdout, `usage:\n${formatCommandList(PROGRAM, [BMC_RAW, BMC_INFO]).join('\n')}\n"inband-agent bmc raw --help", "inband-agent bmc info --help": each one's options`);
          return what === undefined ? 2 : 0;
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
    // A ConfigError (a bad value from any source) is a UsageError too.
    if (e instanceof UsageError) {
      write(io.stderr, `${journalPrefix(io.env, io.stderr, 'error')}inband-agent: ${e.message}`);
      return 2;
    }
    const err = e as Error & { code?: unknown };
    const code = e instanceof ServiceError ? `${e.code}: ` : '';
    write(io.stderr, `${journalPrefix(io.env, io.stderr, 'error')}inband-agent: ${sub ?? ''} failed: ${code}${err.message}`);
    return 1;
  }
}
