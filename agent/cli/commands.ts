/**
 * Every command of the agent's command line, declared once for the shared
 * parser (service/cli-args.ts): its usage, what it does, its options. The
 * parser checks a command line against these and {@link helpOf} prints them;
 * agent/cli.ts and agent/cli/bmc-commands.ts run them. Light on purpose (no
 * service, no backend): the program's help and every usage error come from
 * here before anything heavy loads.
 */
import { formatCommandList, formatHelp, type CommandSpec, type OptionSpec, type OptionSpecs } from '../../service/cli-args.js';
import { CREDENTIAL_CONTRACT } from '../../service/credential-contract.js';
import { BACKEND_OPTIONS, configOptionSpecs } from '../config.js';

export const PROGRAM = 'inband-agent';

const backend = configOptionSpecs(BACKEND_OPTIONS);
const backendNames = BACKEND_OPTIONS.map((n) => n.replace(/_/g, '-'));
/** Every BMC command lists the backend options by name only, so that its help fits a screen. */
const BACKEND_SECTION = { title: 'backend options (inband-agent serve --help-all: what each does, every source)', options: backendNames, brief: true } as const;

const trace: OptionSpec = { type: 'boolean', short: 'v', help: 'each IPMI request and response on stderr, passwords masked' };
const json: OptionSpec = { type: 'boolean', help: 'machine-readable output (JSON)' };
const allowLockout: OptionSpec = { type: 'boolean', help: 'allow leaving a LAN channel without its last enabled administrator' };
const passwordStdin: OptionSpec = { type: 'boolean', help: 'the password: stdin\'s first line (never from an argument)' };

/** A BMC command: its own options, -v/--trace, then the backend options. */
function bmcCommand<O extends OptionSpecs>(spec: Omit<CommandSpec<O>, 'sections' | 'options'> & { options: O }): CommandSpec<O & { trace: OptionSpec }> {
  return { ...spec, options: { ...spec.options, trace, ...backend } as O & { trace: OptionSpec }, sections: [BACKEND_SECTION] };
}

/**
 * set-credentials' flags come from the credential contract: each field the
 * contract gives a flag (service/credential-contract.ts) is that flag, a switch
 * for a bool or the stdin password, a value otherwise, repeatable for a list.
 * The contract checks the values (checkWireParams); the help is the field's
 * description, or the CLI's own words where the CLI does more (the prompt).
 */
function contractFlags(help: Record<string, { help?: string; meta?: string }>): Record<string, OptionSpec> {
  const out: Record<string, OptionSpec> = {};
  for (const f of CREDENTIAL_CONTRACT.fields) {
    if (!f.flag || !f.flagKind) continue;
    const own = help[f.flag] ?? {};
    const text = own.help ?? f.description.split(/: | \(/)[0]!;
    out[f.flag.slice(2)] = f.flagKind === 'bool' || f.flagKind === 'stdin'
      ? { type: 'boolean', help: text }
      : { type: 'string', ...(f.flagKind === 'multi' ? { multiple: true } : {}), meta: own.meta ?? 'VALUE', help: text };
  }
  return out;
}

export const SERVE = {
  name: ['serve'],
  usage: ['serve [options]'],
  summary: 'the daemon: IPA\'s API, lookup, heartbeat',
  about: `Serves ironic-python-agent's /v1 API (port 9999); with --api-url, looks the node up in Ironic,
heartbeats and serves HTTPS. POST /v1/commands needs ?agent_token=; GET /v1/commands is open
because Ironic 21.x polls it without a token (no secrets in it): --require-token-for-reads.`,
  options: { 'help-all': { type: 'boolean', help: 'every option: what it does, its default, every source' }, ...configOptionSpecs() },
  sections: [
    { title: 'Ironic', brief: true, options: ['api-url', 'standalone', 'insecure', 'agent-token-file', 'agent-token', 'lookup-timeout', 'lookup-interval', 'http-request-timeout', 'ironic-api-version', 'global-request-id', 'inspection-callback-url'] },
    { title: 'API', brief: true, options: ['listen-host', 'listen-port', 'advertise-host', 'advertise-port', 'listen-tls', 'tls-cert-file', 'tls-key-file', 'enable-auto-tls', 'tls-min-version', 'require-token-for-reads', 'allow-remote-commands', 'max-command-records', 'max-body-bytes'] },
    { title: 'BMC and logs', brief: true, options: backendNames },
  ],
  footer: 'precedence: flag > environment INBAND_AGENT_* > kernel command line ipa-*/inband-* > --config file',
} as const satisfies CommandSpec;

export const SET_CREDENTIALS = bmcCommand({
  name: ['set-credentials'],
  usage: ['set-credentials --username NAME (--password-stdin | --generate) [options]'],
  summary: 'create or update a BMC user and verify it',
  about: `Creates or updates a BMC user in-band: picks the slot, writes name, password, privilege and
channel access in a vendor-safe order, verifies by reading back, rolls back on failure. The
password never comes from an argument: --password and --password-stdin=VALUE are refused.`,
  options: {
    ...contractFlags({
      '--username': { meta: 'NAME', help: '1-16 ASCII letters, digits, _ . - (not starting with . or -)' },
      '--password-stdin': { help: 'the password: prompted twice on a terminal, else stdin\'s first line' },
      '--generate': { help: 'generate a random password the BMC accepts' },
      '--privilege': { meta: 'LEVEL', help: 'administrator (default), operator or user (or 4, 3, 2)' },
      '--slot': { meta: 'N', help: 'user ID 2-63 (default: the user with this name, else a free slot)' },
      '--channel': { meta: 'N', help: 'LAN channel 1-11, repeatable (default: every LAN channel)' },
      '--enable-channel-access': { help: 'also enable IPMI messaging where the channel blocks login' },
      '--allow-fixed-slot': { help: 'allow a slot whose name the BMC fixes, if the name matches' },
      '--allow-lockout': { help: 'allow leaving a LAN channel without the enabled administrator' },
    }),
    'show-secret': { type: 'boolean', help: 'print a generated password (otherwise shown nowhere)' },
    json,
  },
});

export const BMC_RAW = bmcCommand({
  name: ['bmc', 'raw'],
  usage: ['bmc raw NETFN CMD [DATA...] [options]'],
  summary: 'one raw IPMI request, like ipmitool raw',
  about: `Sends one IPMI request over the system interface and prints the response data bytes in hex.
Bytes are hex, with or without 0x ("bmc raw 0x06 0x01" is Get Device ID, IPMI v2.0 §20.1).
A non-zero completion code is printed with its IPMI spec name and the exit status is 1.`,
  options: {},
});

export const BMC_INFO = bmcCommand({
  name: ['bmc', 'info'],
  usage: ['bmc info [--json] [options]'],
  summary: 'the BMC: device, LAN channels, users',
  about: `Shows the BMC's device ID, IPMI version, LAN channels and user slots (names, enabled state,
per-channel privilege). Never shows passwords (IPMI cannot read them back).`,
  options: { json },
});

export const USER_LIST = bmcCommand({
  name: ['user', 'list'],
  usage: ['user list [CHANNEL] [--channel N] [--json] [options]'],
  summary: 'list users with ipmitool\'s columns',
  about: `ipmitool's columns: ID, Name, Callin, Link Auth, IPMI Msg, Channel Priv Limit.
CHANNEL (0-15, decimal or 0x hex) defaults to the BMC's first LAN channel.`,
  options: { channel: { type: 'string', meta: 'N', help: 'the channel, as CHANNEL is' }, json },
});

export const USER_ENABLE = bmcCommand({
  name: ['user', 'enable|disable'],
  usage: ['user enable|disable ID [--allow-lockout] [--json] [options]'],
  summary: 'enable or disable a user (not the last admin)',
  about: `Set User Password operation 1 (enable) or 0 (disable), IPMI v2.0 §22.30, then read back.
disable refuses the last enabled administrator of a LAN channel without --allow-lockout.`,
  options: { 'allow-lockout': allowLockout, json },
});

export const USER_PRIV = bmcCommand({
  name: ['user', 'priv'],
  usage: ['user priv ID LEVEL [CHANNEL] [--allow-lockout] [--json] [options]'],
  summary: 'set a user\'s privilege (name or number)',
  about: `Set User Access (§22.26) with only the privilege changed, on CHANNEL or every LAN channel.
LEVEL by name or number: callback 1, user 2, operator 3, administrator (admin) 4, oem 5,
no-access 15. The last enabled administrator is not lowered without --allow-lockout.`,
  options: { 'allow-lockout': allowLockout, json },
});

export const USER_TEST = bmcCommand({
  name: ['user', 'test'],
  usage: ['user test ID [16|20] --password-stdin [options]'],
  summary: 'test a user\'s password (changes nothing)',
  about: `Test Password (Set User Password operation 3, §22.30) with stdin's first line as the
password, stored as 16 or 20 bytes (default: 16 unless the password is longer).`,
  options: { 'password-stdin': passwordStdin },
});

export const CHANNEL_INFO = bmcCommand({
  name: ['channel', 'info'],
  usage: ['channel info [CHANNEL] [--json] [options]'],
  summary: 'a channel, like ipmitool channel info',
  about: `Shows Get Channel Info (§22.24) and, for a LAN channel, its volatile and non-volatile
access (§22.23), as ipmitool channel info does. CHANNEL: 0-15, default the first LAN channel.`,
  options: { json },
});

export const MC_INFO = bmcCommand({
  name: ['mc', 'info'],
  usage: ['mc info [--json] [options]'],
  summary: 'the device ID, like ipmitool mc info',
  about: `Shows Get Device ID (§20.1) as ipmitool mc info does: device and firmware revision,
IPMI version, manufacturer, product, additional device support.`,
  options: { json },
});

/** The agent's commands, in the order its help lists them. */
export const AGENT_COMMANDS: readonly CommandSpec[] = [
  SERVE, SET_CREDENTIALS, USER_LIST, USER_ENABLE, USER_PRIV, USER_TEST, CHANNEL_INFO, MC_INFO, BMC_RAW, BMC_INFO,
];

/**
 * The conductor side's commands, as the program's help lists them (usage and
 * summary). They run in the other program (bin/inband-agent.js hands
 * `conductor` over), which the agent never imports; test/agent/cli-help.test.ts
 * holds these equal to the conductor's own declarations.
 */
export const CONDUCTOR_COMMANDS_LISTED: ReadonlyArray<Pick<CommandSpec, 'usage' | 'summary'>> = [
  { usage: ['rotate NODE --ironic-url URL [options]'], summary: 'rotate a node\'s BMC password via Ironic' },
  { usage: ['fleet (NODE... | --all [filters]) --ironic-url URL [options]'], summary: 'rotate many nodes, out-of-band first' },
  { usage: ['serve --ironic-url URL [options]'], summary: 'discovery service and rotation passthru' },
];

export function helpOf(spec: CommandSpec): string {
  return formatHelp(PROGRAM, spec);
}

export function topHelp(version: string): string {
  return [
    `inband-agent ${version}: sets a node's BMC (IPMI) users in-band; serves ironic-python-agent's API.`,
    'usage:',
    ...formatCommandList(PROGRAM, AGENT_COMMANDS),
    ...formatCommandList(`${PROGRAM} conductor`, CONDUCTOR_COMMANDS_LISTED),
    '  inband-agent --version | --help',
    '',
    '"inband-agent COMMAND --help" tells a command\'s options. Every BMC command takes the backend',
    'options (--backend, --device, --vm-codec, ...) and -v/--trace (each IPMI exchange, masked).',
  ].join('\n');
}


/** `inband-agent user --help`: the group's commands, and the options they all take. */
export function groupHelp(group: string): string {
  const members = AGENT_COMMANDS.filter((c) => c.name[0] === group);
  if (members.length === 1) return helpOf(members[0]!);
  return formatHelp(PROGRAM, {
    name: [group], summary: '', usage: members.flatMap((c) => c.usage),
    about: `"${PROGRAM} ${group} SUBCOMMAND --help" tells each one's own options.`,
    options: { trace, ...backend }, sections: [BACKEND_SECTION],
  });
}
