/**
 * The ipmitool habits of an operator on a node, over any backend:
 *
 *   inband-agent user list [CHANNEL] [--channel N] [--json]
 *   inband-agent user enable ID | user disable ID [--allow-lockout]
 *   inband-agent user test ID [16|20] --password-stdin
 *   inband-agent user priv ID LEVEL [CHANNEL] [--allow-lockout]
 *   inband-agent channel info [CHANNEL] [--json]
 *   inband-agent mc info [--json]
 *
 * `user list`, `channel info` and `mc info` print what `ipmitool` prints, column
 * for column (ipmitool 1.8.19 lib/ipmi_user.c, lib/ipmi_channel.c, lib/ipmi_mc.c),
 * so scripts and eyes used to ipmitool read them unchanged. `-v` / `--trace`
 * prints every IPMI request and response on stderr, password bytes masked.
 *
 * One difference on purpose: without a channel, ipmitool asks about channel
 * 0x0E ("this channel"), which over /dev/ipmi0 is the system interface; these
 * commands use the BMC's first LAN channel, the one logins come through.
 */
import type { Readable } from 'node:stream';
import { configFlags, ipmiCallOptions, loadConfig, type LoadedConfig } from '../config.js';
import { parseCommand, UsageError, type CommandSpec } from '../../service/cli-args.js';
import { CHANNEL_INFO, groupHelp, helpOf, MC_INFO, USER_ENABLE, USER_LIST, USER_PRIV, USER_TEST } from './commands.js';
import type { AgentLogger } from '../logger.js';
import type { ChannelReport, DeviceReport, UserAdmin, UserTable } from '../../service/user-admin.js';
import type { ChannelAccess } from '../../service/ipmi-commands.js';
import { journalPrefix, type LineLevel } from '../../service/log-line.js';
import { ServiceError } from '../../service/errors.js';
import { readLine } from '../password-input.js';

export interface CommandIo {
  stdin?: Readable;
  /** stdin's first line read directly (agent/stdio.ts), or undefined to read the `stdin` stream. */
  stdinLineSync?: () => string | undefined;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  cmdlinePath: string | null;
}

/** The transport, as the service layer hands it over (agent/ talks to service/, not to ipmi-kcs/). */
type Transport = UserAdmin['transport'];

function write(s: NodeJS.WritableStream, text: string): void {
  s.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A diagnostic on stderr, with journald's priority prefix when stderr is the journal. */
function diag(io: CommandIo, level: LineLevel, text: string): void {
  write(io.stderr, `${journalPrefix(io.env, io.stderr, level)}${text}`);
}

interface Parsed {
  help: boolean;
  trace: boolean;
  json: boolean;
  allowLockout: boolean;
  passwordStdin: boolean;
  channel?: string;
  positionals: string[];
  loaded: LoadedConfig | null;
}

/** Parses the command's flags (its declaration in commands.ts) and loads the configuration under them. */
function parse(spec: CommandSpec, argv: readonly string[], io: CommandIo): Parsed {
  const args = parseCommand(spec, argv);
  const v = args.values as Record<string, unknown>;
  const p: Parsed = {
    help: args.help, trace: v.trace === true, json: v.json === true, allowLockout: v['allow-lockout'] === true,
    passwordStdin: v['password-stdin'] === true, ...(typeof v.channel === 'string' ? { channel: v.channel } : {}),
    positionals: args.positionals, loaded: null,
  };
  if (p.help) return p;
  p.loaded = loadConfig({ flags: configFlags(args.values, args.given), env: io.env, cmdlinePath: io.cmdlinePath });
  return p;
}

/** A channel number 0-15, decimal or 0x hex (as ipmitool takes it). */
function parseChannel(text: string, what: string): number {
  const t = text.trim().toLowerCase();
  const n = /^0x[0-9a-f]{1,2}$/.test(t) ? parseInt(t, 16) : /^\d{1,2}$/.test(t) ? Number(t) : NaN;
  if (!(n >= 0 && n <= 15)) throw new UsageError(`${what}: "${text}" is not a channel number (0-15)`);
  return n;
}

function parseUserId(text: string | undefined): number {
  if (text === undefined) throw new UsageError('give the user ID (see inband-agent user list)');
  const n = /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 63)) throw new UsageError(`user ID "${text}": must be a number 1-63`);
  return n;
}

interface Session {
  admin: UserAdmin;
  transport: Transport;
  logger: AgentLogger;
  close(): Promise<void>;
}

async function open(p: Parsed, io: CommandIo): Promise<Session> {
  const loaded = p.loaded!;
  const { createLogger } = await import('../logger.js');
  // Results go to stdout; log lines to stderr, warnings and worse unless --log-level says otherwise.
  const level = loaded.sources.log_level !== 'default' ? loaded.config.log_level : 'warn';
  const logger = createLogger({ level, stream: io.stderr, format: loaded.config.log_format, env: io.env });
  const { openBackendFromConfig } = await import('../backend.js');
  const { transport: raw } = await openBackendFromConfig(loaded.config, logger.log.child({ module: 'backend' }));
  let transport: Transport = raw;
  if (p.trace) {
    const { TracingTransport } = await import('../../service/ipmi-trace.js');
    transport = new TracingTransport(raw, (line) => io.stderr.write(`${line}\n`));
  }
  const { UserAdmin } = await import('../../service/user-admin.js');
  const admin = new UserAdmin({ transport, logger: logger.log.child({ module: 'service' }), ...ipmiCallOptions(loaded.config) });
  if (raw.kind === 'simulated') diag(io, 'warn', 'inband-agent: SIMULATED BMC: this is not a real BMC; nothing here reflects or changes hardware');
  return { admin, transport, logger, close: () => raw.close() };
}

// ------------------------------------------------------------------ ipmitool's formats

/** ipmitool lib/ipmi_user.c dump_user_access: header with tabs, then printf("%-4d%-17s%-8s%-11s%-11s%-s\n"). */
export function formatUserList(table: UserTable, privName: (n: number) => string): string {
  const lines = ['ID  Name\t     Callin  Link Auth\tIPMI Msg   Channel Priv Limit'];
  const tf = (b: boolean): string => (b ? 'true ' : 'false');
  for (const r of table.rows) {
    lines.push(`${String(r.id).padEnd(4)}${r.name.padEnd(17)}${tf(r.callin).padEnd(8)}${tf(r.linkAuth).padEnd(11)}${tf(r.ipmiMessaging).padEnd(11)}${privName(r.privilege)}`);
  }
  return lines.join('\n');
}

const MEDIUM: Record<number, string> = {
  0x00: 'reserved', 0x01: 'IPMB (I2C)', 0x02: 'ICMB v1.0', 0x03: 'ICMB v0.9', 0x04: '802.3 LAN', 0x05: 'Serial/Modem',
  0x06: 'Other LAN', 0x07: 'PCI SMBus', 0x08: 'SMBus v1.0/v1.1', 0x09: 'SMBus v2.0', 0x0a: 'USB 1.x', 0x0b: 'USB 2.x', 0x0c: 'System Interface',
};
const PROTOCOL: Record<number, string> = {
  0x00: 'reserved', 0x01: 'IPMB-1.0', 0x02: 'ICMB-1.0', 0x03: 'reserved', 0x04: 'IPMI-SMBus', 0x05: 'KCS', 0x06: 'SMIC',
  0x07: 'BT-10', 0x08: 'BT-15', 0x09: 'TMode', 0x1c: 'OEM 1', 0x1d: 'OEM 2', 0x1e: 'OEM 3', 0x1f: 'OEM 4',
};
const SESSION = ['session-less', 'single-session', 'multi-session', 'session-based'];
const ACCESS_MODE = ['disabled', 'pre-boot only', 'always available', 'shared'];
/** ipmitool's val2str fallback. */
const unknown = (v: number): string => `Unknown (0x${v.toString(16).toUpperCase().padStart(2, '0')})`;

function accessLines(title: string, a: ChannelAccess): string[] {
  // §22.23 byte 1: bit 5 PEF alerting disabled, bit 4 per-message auth disabled, bit 3 user-level auth disabled.
  const en = (bit: number): string => ((a.authBits & bit) !== 0 ? 'disabled' : 'enabled');
  return [
    `  ${title}`,
    `    Alerting            : ${en(0x20)}`,
    `    Per-message Auth    : ${en(0x10)}`,
    `    User Level Auth     : ${en(0x08)}`,
    `    Access Mode         : ${ACCESS_MODE[a.accessMode] ?? 'disabled'}`,
  ];
}

/** ipmitool lib/ipmi_channel.c ipmi_get_channel_info. */
export function formatChannelInfo(c: ChannelReport): string {
  const out = [
    `Channel 0x${c.channel.toString(16)} info:`,
    `  Channel Medium Type   : ${MEDIUM[c.medium] ?? unknown(c.medium)}`,
    `  Channel Protocol Type : ${PROTOCOL[c.protocol] ?? unknown(c.protocol)}`,
    `  Session Support       : ${SESSION[c.sessionSupport] ?? 'session-based'}`,
    `  Active Session Count  : ${c.activeSessions}`,
    `  Protocol Vendor ID    : ${c.vendorId}`,
  ];
  if (c.access?.volatile) out.push(...accessLines('Volatile(active) Settings', c.access.volatile));
  if (c.access?.nonVolatile) out.push(...accessLines('Non-Volatile Settings', c.access.nonVolatile));
  return out.join('\n');
}

/** IANA enterprise numbers of common BMC makers (ipmitool reads the whole registry; these suffice on a node). */
const MANUFACTURER: Record<number, string> = {
  2: 'IBM', 11: 'Hewlett-Packard', 343: 'Intel Corporation', 674: 'Dell Inc.', 4753: 'MontaVista Software, Inc.',
  7244: 'Quanta Computer Inc.', 10876: 'Super Micro Computer Inc.', 19046: 'Lenovo', 20974: 'American Megatrends, Inc.',
  47196: 'Hewlett Packard Enterprise', 49622: 'OpenBMC Project',
};
/** §20.1 byte 6, bit 0 first (ipmitool's ipm_dev_adtl_dev_support). */
const ADDITIONAL = ['Sensor Device', 'SDR Repository Device', 'SEL Device', 'FRU Inventory Device', 'IPMB Event Receiver', 'IPMB Event Generator', 'Bridge', 'Chassis Device'];

/** ipmitool lib/ipmi_mc.c ipmi_mc_get_deviceid. */
export function formatMcInfo(d: DeviceReport): string {
  const out = [
    `Device ID                 : ${d.deviceId}`,
    `Device Revision           : ${d.deviceRevision}`,
    `Firmware Revision         : ${d.firmwareMajor}.${d.firmwareMinor.toString(16).padStart(2, '0')}`,
    `IPMI Version              : ${d.ipmiVersion}`,
    `Manufacturer ID           : ${d.manufacturerId}`,
    `Manufacturer Name         : ${MANUFACTURER[d.manufacturerId] ?? 'Unknown'}`,
    `Product ID                : ${d.productId} (0x${d.productId.toString(16).padStart(4, '0')})`,
    `Product Name              : Unknown (0x${d.productId.toString(16).toUpperCase()})`,
    `Device Available          : ${d.available ? 'yes' : 'no'}`,
    `Provides Device SDRs      : ${d.providesSdrs ? 'yes' : 'no'}`,
    'Additional Device Support :',
    ...ADDITIONAL.filter((_n, i) => (d.additionalSupport & (1 << i)) !== 0).map((n) => `    ${n}`),
  ];
  if (d.auxFirmware) out.push('Aux Firmware Rev Info     : ', ...d.auxFirmware.map((b) => `    0x${b.toString(16).padStart(2, '0')}`));
  return out.join('\n');
}

// ------------------------------------------------------------------ commands

async function run(p: Parsed, io: CommandIo, body: (s: Session) => Promise<number>): Promise<number> {
  const s = await open(p, io);
  try {
    return await body(s);
  } finally {
    await s.close();
  }
}

async function userCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [what, ...more] = argv;
  if (what === undefined || what === '-h' || what === '--help' || what === 'help') {
    write(what === undefined ? io.stderr : io.stdout, groupHelp('user'));
    return what === undefined ? 2 : 0;
  }
  if (what === 'list') {
    const p = parse(USER_LIST, more, io);
    if (p.help) return (write(io.stdout, helpOf(USER_LIST)), 0);
    if (p.positionals.length > 1) throw new UsageError(`user list takes at most one CHANNEL (got ${p.positionals.length} arguments)`);
    if (p.channel !== undefined && p.positionals[0] !== undefined) throw new UsageError('give the channel once: as CHANNEL or as --channel');
    const given = p.channel ?? p.positionals[0];
    const ch = given === undefined ? undefined : parseChannel(given, p.channel !== undefined ? '--channel' : 'CHANNEL');
    return run(p, io, async ({ admin }) => {
      const table = await admin.listUsers(ch ?? await admin.defaultChannel());
      if (p.json) {
        write(io.stdout, JSON.stringify(table, null, 2));
        return 0;
      }
      const { ipmitoolPrivilegeName } = await import('../../service/credential-contract.js');
      write(io.stdout, formatUserList(table, ipmitoolPrivilegeName));
      return 0;
    });
  }
  if (what === 'enable' || what === 'disable') {
    const p = parse(USER_ENABLE, more, io);
    if (p.help) return (write(io.stdout, helpOf(USER_ENABLE)), 0);
    if (p.positionals.length > 1) throw new UsageError(`user ${what} takes one user ID`);
    const id = parseUserId(p.positionals[0]);
    return run(p, io, async ({ admin, transport }) => {
      const r = await admin.setEnabled(id, what === 'enable', { allowLockout: p.allowLockout });
      const simulated = transport.kind === 'simulated';
      if (p.json) write(io.stdout, JSON.stringify({ ...r, ...(simulated ? { simulated: true } : {}) }, null, 2));
      else {
        write(io.stdout, `User ${r.userId}${r.name ? ` ("${r.name}")` : ''} ${r.verified ? `${what}d` : `NOT ${what}d`}: reads back ${r.enabled ? 'enabled' : 'disabled'} `
          + `(${r.source === 'status' ? 'enable status' : 'IPMI messaging'}, LAN channel${r.channels.length === 1 ? '' : 's'} ${r.channels.join(', ')})${simulated ? ' [SIMULATED BMC]' : ''}`);
        for (const w of r.warnings) diag(io, 'warn', `warning: ${w}`);
      }
      return r.verified ? 0 : 1;
    });
  }
  if (what === 'priv') {
    const p = parse(USER_PRIV, more, io);
    if (p.help) return (write(io.stdout, helpOf(USER_PRIV)), 0);
    if (p.positionals.length < 2 || p.positionals.length > 3) throw new UsageError('user priv takes ID, LEVEL and an optional CHANNEL');
    const id = parseUserId(p.positionals[0]);
    const { parsePrivilege, PRIVILEGE_CHOICES, ipmitoolPrivilegeName } = await import('../../service/credential-contract.js');
    const level = parsePrivilege(p.positionals[1]!);
    if (level === undefined) throw new UsageError(`privilege "${p.positionals[1]}": one of ${PRIVILEGE_CHOICES}`);
    const channel = p.positionals[2] === undefined ? undefined : parseChannel(p.positionals[2], 'CHANNEL');
    return run(p, io, async ({ admin, transport }) => {
      const r = await admin.setPrivilege(id, level, { ...(channel !== undefined ? { channel } : {}), allowLockout: p.allowLockout });
      const simulated = transport.kind === 'simulated';
      if (p.json) write(io.stdout, JSON.stringify({ ...r, ...(simulated ? { simulated: true } : {}) }, null, 2));
      else {
        write(io.stdout, `User ${r.userId}${r.name ? ` ("${r.name}")` : ''} privilege ${r.verified ? 'set to' : 'NOT set to'} ${ipmitoolPrivilegeName(level)}: reads back `
          + `${r.channels.map((ch) => `${ipmitoolPrivilegeName(r.readBack[ch] ?? 0)} on channel ${ch}`).join(', ')}${simulated ? ' [SIMULATED BMC]' : ''}`);
        for (const w of r.warnings) diag(io, 'warn', `warning: ${w}`);
      }
      return r.verified ? 0 : 1;
    });
  }
  if (what === 'test') {
    const p = parse(USER_TEST, more, io);
    if (p.help) return (write(io.stdout, helpOf(USER_TEST)), 0);
    // A stray argument is not echoed: it may be a password typed where ipmitool takes one.
    if (p.positionals.length > 2) throw new UsageError(`user test takes ID and an optional size 16 or 20 (got ${p.positionals.length} arguments); the password is read with --password-stdin, never from an argument`);
    const id = parseUserId(p.positionals[0]);
    const sizeText = p.positionals[1];
    if (sizeText !== undefined && sizeText !== '16' && sizeText !== '20') throw new UsageError('the size must be 16 or 20 (the password is read with --password-stdin, never from an argument)');
    if (!p.passwordStdin) throw new UsageError('user test needs --password-stdin (the password is never taken from an argument)');
    const line = io.stdinLineSync?.() ?? (io.stdin ? await readLine(io.stdin) : '');
    if (!line) throw new UsageError('--password-stdin: stdin gave an empty password');
    const { Secret } = await import('../../service/secret.js');
    const secret = Secret.fromString(line);
    try {
      const size = sizeText ? (Number(sizeText) as 16 | 20) : secret.length > 16 ? 20 : 16;
      if (secret.length > size) throw new UsageError(`the password is longer than ${size} bytes`);
      return await run(p, io, async ({ admin, transport, logger }) => {
        logger.redactor.register(line);
        const r = await admin.testPassword(id, secret, size);
        // ipmitool lib/ipmi_user.c ipmi_user_test_password's words.
        write(io.stdout, r === 'success' ? 'Success' : r === 'incorrect' ? 'Failure: password incorrect' : 'Failure: wrong password size');
        if (transport.kind === 'simulated') diag(io, 'warn', 'note: a SIMULATED BMC answered');
        return r === 'success' ? 0 : 1;
      });
    } finally {
      secret.dispose();
    }
  }
  throw new UsageError(`unknown user subcommand "${what}" (list, enable, disable, test, priv)`);
}

async function channelCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [what, ...more] = argv;
  if (what === undefined || what === '-h' || what === '--help' || what === 'help') {
    write(what === undefined ? io.stderr : io.stdout, groupHelp('channel'));
    return what === undefined ? 2 : 0;
  }
  if (what !== 'info') throw new UsageError(`unknown channel subcommand "${what}" (info)`);
  const p = parse(CHANNEL_INFO, more, io);
  if (p.help) return (write(io.stdout, helpOf(CHANNEL_INFO)), 0);
  if (p.positionals.length > 1) throw new UsageError('channel info takes at most one CHANNEL');
  const ch = p.positionals[0] === undefined ? undefined : parseChannel(p.positionals[0], 'CHANNEL');
  return run(p, io, async ({ admin }) => {
    const channel = ch ?? await admin.defaultChannel();
    const info = await admin.channelInfo(channel);
    if (!info) {
      diag(io, 'error', `inband-agent: channel ${channel} does not exist on this BMC`);
      return 1;
    }
    write(io.stdout, p.json ? JSON.stringify(info, null, 2) : formatChannelInfo(info));
    return 0;
  });
}

async function mcCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [what, ...more] = argv;
  if (what === undefined || what === '-h' || what === '--help' || what === 'help') {
    write(what === undefined ? io.stderr : io.stdout, groupHelp('mc'));
    return what === undefined ? 2 : 0;
  }
  if (what !== 'info') throw new UsageError(`unknown mc subcommand "${what}" (info)`);
  const p = parse(MC_INFO, more, io);
  if (p.help) return (write(io.stdout, helpOf(MC_INFO)), 0);
  if (p.positionals.length) throw new UsageError(`mc info takes no arguments (got "${p.positionals[0]}")`);
  return run(p, io, async ({ admin }) => {
    const d = await admin.device();
    write(io.stdout, p.json ? JSON.stringify(d, null, 2) : formatMcInfo(d));
    return 0;
  });
}

/** Runs `user …`, `channel …` or `mc …`; returns the exit status (2: usage, before anything is sent). */
export async function runBmcCommand(command: 'user' | 'channel' | 'mc', argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    if (command === 'user') return await userCommand(argv, io);
    if (command === 'channel') return await channelCommand(argv, io);
    return await mcCommand(argv, io);
  } catch (e) {
    // A ConfigError (a bad value from any source) is a UsageError too.
    if (e instanceof UsageError) {
      diag(io, 'error', `inband-agent: ${e.message}`);
      return 2;
    }
    const err = e as Error & { code?: unknown };
    const code = e instanceof ServiceError ? `${e.code}: ` : '';
    diag(io, 'error', `inband-agent: ${command} ${argv[0] ?? ''} failed: ${code}${err.message}`);
    return 1;
  }
}
