/**
 * The agent's configuration, declared once. Every option has one entry in
 * {@link OPTIONS}: its type, default, help, and the names it goes by in each
 * source. Sources are layered, highest first:
 *
 *   CLI flags > environment (INBAND_AGENT_*) > kernel command line (ipa-*,
 *   as Ironic's boot templates write them) > config file (--config FILE) > defaults
 *
 * The merged result is validated by one ajv schema generated from the same
 * table, then frozen. Option names follow ironic-python-agent's
 * (`ironic_python_agent/config.py`) wherever IPA has the option.
 *
 * The agent token is kept out of the config object (it is handed to the
 * AgentTokenStore) so that printing the config can never print the token.
 */
import { readFileSync } from 'node:fs';
import { configValidator } from './config-validator.js';
import { parseCommand, UsageError, type OptionSpec as ArgSpec } from '../service/cli-args.js';

/** Minimum length Ironic's tokens have (IPA refuses shorter ones from lookup; token.ts checks those). */
export const MIN_TOKEN_LENGTH = 32;

const TOKEN_SOURCE_NAMES = { flag: '--agent-token', env: 'INBAND_AGENT_AGENT_TOKEN', 'kernel-cmdline': 'ipa-agent-token', file: '--agent-token-file' } as const;

type OptType = 'string' | 'int' | 'bool' | 'list' | 'enum';

interface OptionSpec {
  type: OptType;
  /** Default value (after parsing). Omitted: unset. */
  default?: string | number | boolean | string[];
  help: string;
  /** Metavariable for the help text. */
  meta?: string;
  /** Kernel command-line parameter; IPA's name where IPA has the option. `null`: not read from the command line. */
  cmdline?: string | null;
  min?: number;
  max?: number;
  choices?: readonly string[];
  pattern?: string;
  /** Not read from the config file (e.g. the config file path itself). */
  noFile?: boolean;
  /** A secret: never shown with its value, and a flag warns. */
  secret?: boolean;
}

/** Every option the agent has. Keys are the config-file names and the Config field names. */
export const OPTIONS = {
  api_url: { type: 'list', meta: 'URL[,URL...]', cmdline: 'ipa-api-url', pattern: '^(mdns|https?://.+)$',
    help: 'Ironic API URL(s), comma-separated; tried in turn (fail-over). Without it the agent serves its API only (no lookup/heartbeat).' },
  listen_host: { type: 'string', default: '::', meta: 'ADDR', cmdline: 'ipa-listen-host',
    help: 'Address the API listens on (:: is all IPv6 and IPv4 addresses; falls back to 0.0.0.0 where IPv6 is off).' },
  listen_port: { type: 'int', default: 9999, meta: 'PORT', cmdline: 'ipa-listen-port', min: 0, max: 65535,
    help: 'Port the API listens on (0 picks a free one).' },
  advertise_host: { type: 'string', meta: 'ADDR', cmdline: 'ipa-advertise-host',
    help: 'Address sent to the conductor as the callback URL (default: the source address of the route to the Ironic API).' },
  advertise_port: { type: 'int', default: 9999, meta: 'PORT', cmdline: 'ipa-advertise-port', min: 1, max: 65535,
    help: 'Port sent to the conductor in the callback URL.' },
  agent_token: { type: 'string', meta: 'TOKEN', cmdline: 'ipa-agent-token', secret: true,
    help: 'Pre-shared agent token (virtual-media boots). Prefer the kernel command line or --agent-token-file: a flag is visible in /proc/PID/cmdline.' },
  agent_token_file: { type: 'string', meta: 'FILE', cmdline: null,
    help: 'Read the pre-shared agent token from FILE (first line).' },
  insecure: { type: 'bool', default: false, cmdline: 'ipa-insecure',
    help: 'Do not verify the Ironic API\'s TLS certificate.' },
  inspection_callback_url: { type: 'string', meta: 'URL', cmdline: 'ipa-inspection-callback-url', pattern: '^https?://.+$',
    help: 'Where to post the inventory when lookup finds no node (discovery).' },
  lookup_timeout: { type: 'int', default: 600, meta: 'SECONDS', cmdline: 'ipa-lookup-timeout', min: 1, max: 86400,
    help: 'Give up looking the node up after this many seconds.' },
  lookup_interval: { type: 'int', default: 1, meta: 'SECONDS', cmdline: 'ipa-lookup-interval', min: 1, max: 600,
    help: 'Initial pause between lookup attempts (grows exponentially up to 60 s).' },
  http_request_timeout: { type: 'int', default: 30, meta: 'SECONDS', cmdline: 'ipa-http-request-timeout', min: 1, max: 600,
    help: 'Timeout of each request to the Ironic API.' },
  ironic_api_version: { type: 'string', meta: 'X.Y', cmdline: 'ipa-ironic-api-version', pattern: '^1\\.[0-9]+$',
    help: 'Ironic API microversion to use (default: negotiated from GET /).' },
  global_request_id: { type: 'string', meta: 'ID', cmdline: 'ipa-global-request-id',
    help: 'Sent to Ironic as X-OpenStack-Request-ID.' },
  standalone: { type: 'bool', default: false, cmdline: 'ipa-standalone',
    help: 'Serve the API without a conductor: no lookup, no heartbeat, even if --api-url is set.' },
  listen_tls: { type: 'bool', default: false, cmdline: null,
    help: 'Serve the API over TLS with the operator\'s --tls-cert-file and --tls-key-file.' },
  tls_cert_file: { type: 'string', meta: 'FILE', cmdline: null, help: 'PEM certificate (chain) for --listen-tls.' },
  tls_key_file: { type: 'string', meta: 'FILE', cmdline: null, help: 'PEM private key for --listen-tls.' },
  enable_auto_tls: { type: 'bool', default: true, cmdline: 'ipa-enable-auto-tls',
    help: 'With a conductor and no --listen-tls: serve HTTPS with a self-signed EC P-384 certificate for the advertised address, sent to Ironic as agent_verify_ca.' },
  tls_min_version: { type: 'enum', default: '1.2', choices: ['1.2', '1.3'], cmdline: 'ipa-tls-min-version',
    help: 'Lowest TLS version the API accepts (raised to the conductor\'s tls_min_version from lookup).' },
  require_token_for_reads: { type: 'bool', default: false, cmdline: 'inband-require-token-for-reads',
    help: 'Require the agent token on GET /v1/commands too. Off by default: Ironic 21.x polls GET /v1/commands/ without a token, and command records never carry secrets.' },
  allow_remote_commands: { type: 'bool', default: false, cmdline: null,
    help: 'With no agent token at all, accept commands from any address (default: loopback only).' },
  max_command_records: { type: 'int', default: 100, meta: 'N', cmdline: null, min: 1, max: 100000,
    help: 'Command records kept in memory; the oldest finished ones are dropped first.' },
  max_body_bytes: { type: 'int', default: 1048576, meta: 'BYTES', cmdline: null, min: 1024, max: 64 * 1048576,
    help: 'Largest request body accepted (bigger: 413).' },
  // /var/lib, not /run: the unit's RuntimeDirectory (/run/inband-agent) is removed
  // on every stop, Restart=on-failure included, and the journal exists for exactly
  // that restart (docs/crash-journal.md).
  state_dir: { type: 'string', default: '/var/lib/inband-agent', meta: 'DIR', cmdline: 'inband-state-dir',
    help: 'Directory of the crash journal of an interrupted credential change (must survive a restart of the agent; checked at start).' },
  log_level: { type: 'enum', default: 'info', choices: ['error', 'warn', 'info', 'debug'], cmdline: 'inband-log-level',
    help: 'Least severe level logged.' },
  log_format: { type: 'enum', default: 'auto', choices: ['auto', 'json', 'text'], cmdline: 'inband-log-format',
    help: 'Log line format: JSON objects or text for people; auto = text on a terminal, JSON otherwise. Under systemd (JOURNAL_STREAM) lines carry journald priority prefixes.' },
  backend: { type: 'enum', default: 'auto', choices: ['auto', 'native', 'simulated', 'vm-codec', 'ipmitool'], cmdline: 'inband-backend',
    help: 'How to reach the BMC: native /dev/ipmi0, simulated BMC, ipmi_sim VM codec, ipmitool; auto = native if a device and the addon exist, else simulated (with a loud warning).' },
  device: { type: 'string', meta: 'PATH', cmdline: 'inband-device', help: 'IPMI device for the native backend (default: /dev/ipmi0, /dev/ipmi/0, /dev/ipmidev/0).' },
  vm_codec: { type: 'string', meta: 'HOST:PORT', cmdline: 'inband-vm-codec', help: 'ipmi_sim VM-codec socket for the vm-codec backend.' },
  sim_profile: { type: 'string', meta: 'NAME', cmdline: 'inband-sim-profile', help: 'Vendor profile of the simulated BMC.' },
  sim_state_file: { type: 'string', meta: 'FILE', cmdline: 'inband-sim-state-file', help: 'State file of the simulated BMC (survives restarts).' },
  // The defaults equal service/bmc-client.ts DEFAULT_CALL_TIMEOUT_MS and DEFAULT_RETRY.attempts - 1 (a test holds
  // them equal); spelled out here so that loading the config does not load service/.
  ipmi_timeout: { type: 'int', default: 10, meta: 'SECONDS', cmdline: 'inband-ipmi-timeout', min: 1, max: 600,
    help: 'Timeout of each IPMI request to the BMC. With --ipmi-retries it bounds how long a BMC that stopped answering holds a step: (retries + 1) x timeout, plus back-off.' },
  ipmi_retries: { type: 'int', default: 7, meta: 'N', cmdline: 'inband-ipmi-retries', min: 0, max: 50,
    help: 'Retries of an IPMI request that timed out or found the BMC busy (0xC0/0xD2/0xC3, EBUSY), after the first try; only idempotent requests are retried on a timeout.' },
  config: { type: 'string', meta: 'FILE', cmdline: 'inband-config', noFile: true, help: 'Config file: JSON, or INI-style `key = value` lines.' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

// An enum option's type is its list of choices, so code reading `config.backend` or
// `config.log_level` is checked against what the table allows, with no casts.
type ValueOf<S> = S extends { type: 'int' } ? number : S extends { type: 'bool' } ? boolean : S extends { type: 'list' } ? readonly string[]
  : S extends { type: 'enum'; choices: readonly (infer C)[] } ? C : string;
type HasDefault<S> = S extends { default: unknown } ? true : false;

/** The merged, validated, frozen configuration (without the agent token). */
export type Config = {
  readonly [K in Exclude<OptionName, 'agent_token'> as HasDefault<(typeof OPTIONS)[K]> extends true ? K : never]: ValueOf<(typeof OPTIONS)[K]>;
} & {
  readonly [K in Exclude<OptionName, 'agent_token'> as HasDefault<(typeof OPTIONS)[K]> extends true ? never : K]?: ValueOf<(typeof OPTIONS)[K]>;
};

export type Source = 'flag' | 'env' | 'kernel-cmdline' | 'file' | 'default';

export interface LoadedConfig {
  config: Config;
  /** The pre-shared token, if any, and where it came from. Kept apart from `config`. */
  agentToken?: { value: string; source: 'flag' | 'env' | 'kernel-cmdline' | 'file' };
  /** Where each set option came from. */
  sources: Readonly<Partial<Record<OptionName, Source>>>;
  /** Positional arguments left after the flags. */
  positionals: string[];
  warnings: string[];
}

/** A configuration that cannot be used, from any source; a usage error (exit 2), like a bad flag. */
export class ConfigError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Path of the kernel command line (default /proc/cmdline); `null` skips it. */
  cmdlinePath?: string | null;
  /** Flags a command parsed already (configFlags); used instead of `argv`. */
  flags?: ReadonlyMap<OptionName, string | number | boolean | string[]>;
  /** Kernel command-line text (overrides cmdlinePath; for tests). */
  cmdlineText?: string;
  /** Reads a file (config file, token file); injectable for tests. */
  readFile?: (path: string) => string;
}

const specs = OPTIONS as Record<OptionName, OptionSpec>;
const names = Object.keys(OPTIONS) as OptionName[];
export const flagName = (n: OptionName): string => `--${n.replace(/_/g, '-')}`;
export const envName = (n: OptionName): string => `INBAND_AGENT_${n.toUpperCase()}`;

const byFlag = new Map<string, OptionName>(names.map((n) => [flagName(n), n]));
const byCmdline = new Map<string, OptionName>(names.flatMap((n) => (specs[n].cmdline ? [[specs[n].cmdline as string, n] as [string, OptionName]] : [])));
const byFileKey = new Map<string, OptionName>(names.flatMap((n) => [[n, n], [n.replace(/_/g, '-'), n]] as Array<[string, OptionName]>));

/** Parses one textual value for option `n`; throws ConfigError naming the option and the source. */
function parseValue(n: OptionName, raw: string, where: string): string | number | boolean | string[] {
  const s = specs[n];
  const fail = (why: string): never => {
    throw new ConfigError(`${flagName(n)} (${where}): ${why}`);
  };
  switch (s.type) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) fail(`expected an integer, got "${s.secret ? '***' : raw}"`);
      return Number(raw.trim());
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on', ''].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return fail(`expected true/false (1/0, yes/no, on/off), got "${raw}"`);
    }
    case 'list':
      return raw.split(',').map((x) => x.trim()).filter(Boolean);
    default:
      return raw;
  }
}

/** Splits a kernel command line into `key=value` pairs, honouring double quotes. */
export function parseKernelCmdline(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([^\s=]+)(?:=("([^"]*)"|\S*))?/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const key = m[1]!;
    const value = m[3] ?? m[2] ?? '';
    out.set(key, value);
  }
  return out;
}

/** Parses a config file: a JSON object, or INI-style `key = value` lines (`[sections]`, `#`/`;` comments ignored). */
export function parseConfigFile(text: string, path: string): Map<string, string | number | boolean | string[]> {
  const out = new Map<string, string | number | boolean | string[]>();
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(trimmed);
    } catch (e) {
      throw new ConfigError(`config file ${path}: invalid JSON: ${(e as Error).message}`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new ConfigError(`config file ${path}: expected a JSON object`);
    for (const [k, v] of Object.entries(obj)) {
      if (Array.isArray(v)) out.set(k, v.map(String));
      else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out.set(k, v);
      else throw new ConfigError(`config file ${path}: "${k}" must be a string, number, boolean or list`);
    }
    return out;
  }
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (!l || l.startsWith('#') || l.startsWith(';') || (l.startsWith('[') && l.endsWith(']'))) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new ConfigError(`config file ${path} line ${i + 1}: expected "key = value"`);
    out.set(l.slice(0, eq).trim(), l.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  });
  return out;
}

/**
 * The options `only` names (default: every one) as the shared parser declares
 * them (service/cli-args.ts): a command that takes config flags declares these.
 * Values stay text here and are typed by {@link configFlags}, so a flag's value
 * meets the same rules as the environment's or the config file's.
 */
export function configOptionSpecs(only: readonly OptionName[] = names): Record<string, ArgSpec> {
  const out: Record<string, ArgSpec> = {};
  for (const n of only) {
    const s = specs[n];
    out[n.replace(/_/g, '-')] = {
      type: s.type === 'bool' ? 'boolean' : 'string',
      ...(s.type === 'bool' ? { negatable: true } : {}),
      ...(s.type === 'list' ? { multiple: true } : {}),
      ...(s.choices ? { choices: s.choices } : {}),
      ...(s.meta ? { meta: s.meta } : {}),
      help: firstClause(s.help),
    };
  }
  return out;
}

/** The config values a parse gave (only the options given), typed; throws ConfigError naming the flag. */
export function configFlags(values: Readonly<Record<string, unknown>>, given: ReadonlySet<string>): Map<OptionName, string | number | boolean | string[]> {
  const out = new Map<OptionName, string | number | boolean | string[]>();
  for (const flag of given) {
    const n = byFlag.get(`--${flag}`);
    if (!n) continue;
    const v = values[flag];
    if (typeof v === 'boolean') out.set(n, v);
    // A list flag may be repeated, and each value may hold several: --api-url A,B --api-url C.
    else if (Array.isArray(v)) out.set(n, v.flatMap((t) => parseValue(n, String(t), 'command line') as string[]));
    else if (typeof v === 'string') out.set(n, parseValue(n, v, 'command line'));
  }
  return out;
}

/** Parses `argv` as flags of every option (and positionals): `--name value`, `--name=value`, `--flag`, `--no-flag`. */
export function parseFlags(argv: readonly string[]): { values: Map<OptionName, string | number | boolean | string[]>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseCommand({ options: configOptionSpecs() }, argv);
  } catch (e) {
    if (e instanceof UsageError && !(e instanceof ConfigError)) throw new ConfigError(e.message);
    throw e;
  }
  return { values: configFlags(parsed.values, parsed.given), positionals: parsed.positionals };
}

/** The JSON schema of the merged config, generated from {@link OPTIONS}. */
export function configSchema(): object {
  const properties: Record<string, object> = {};
  for (const n of names) {
    const s = specs[n];
    const p: Record<string, unknown> = {};
    if (s.type === 'int') Object.assign(p, { type: 'integer', ...(s.min !== undefined ? { minimum: s.min } : {}), ...(s.max !== undefined ? { maximum: s.max } : {}) });
    else if (s.type === 'bool') p.type = 'boolean';
    else if (s.type === 'list') Object.assign(p, { type: 'array', items: { type: 'string', ...(s.pattern ? { pattern: s.pattern } : {}) } });
    else if (s.type === 'enum') Object.assign(p, { type: 'string', enum: s.choices });
    else Object.assign(p, { type: 'string', ...(s.pattern ? { pattern: s.pattern } : {}) });
    properties[n] = p;
  }
  return { type: 'object', properties, additionalProperties: false };
}

function validate(obj: Record<string, unknown>): void {
  // Built ahead of time into the bundle; compiled on first use otherwise (config-validator.ts).
  const validator = configValidator(configSchema);
  if (!validator(obj)) {
    const msgs = (validator.errors ?? []).map((e) => {
      const key = e.instancePath.split('/')[1] as OptionName | undefined;
      const label = key ? flagName(key) : 'config';
      if (e.keyword === 'additionalProperties') return `unknown option "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`;
      // Name the valid values, so `--backend foo` says which backends exist.
      if (e.keyword === 'enum' && key) return `${label} must be one of ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')} (got "${String(obj[key])}")`;
      return `${label}${e.instancePath.split('/').length > 2 ? `[${e.instancePath.split('/')[2]}]` : ''} ${e.message ?? 'is invalid'}`;
    });
    throw new ConfigError(msgs.join('; '));
  }
}

/** Loads, layers, validates and freezes the configuration. Throws {@link ConfigError} with a readable message. */
export function loadConfig(opts: LoadConfigOptions = {}): LoadedConfig {
  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const env = opts.env ?? process.env;
  const warnings: string[] = [];
  const merged: Record<string, unknown> = {};
  const sources: Partial<Record<OptionName, Source>> = {};

  const { values: flags, positionals } = opts.flags ? { values: opts.flags, positionals: [] } : parseFlags(opts.argv ?? []);

  const fromEnv = new Map<OptionName, string | number | boolean | string[]>();
  for (const n of names) {
    const v = env[envName(n)];
    if (v !== undefined && v !== '') fromEnv.set(n, parseValue(n, v, `environment ${envName(n)}`));
  }

  const fromCmdline = new Map<OptionName, string | number | boolean | string[]>();
  let cmdText = opts.cmdlineText;
  if (cmdText === undefined && opts.cmdlinePath !== null) {
    try {
      cmdText = readFileSync(opts.cmdlinePath ?? '/proc/cmdline', 'utf8');
    } catch {
      cmdText = '';
    }
  }
  for (const [k, v] of parseKernelCmdline(cmdText ?? '')) {
    const n = byCmdline.get(k);
    if (n) fromCmdline.set(n, parseValue(n, v, `kernel command line ${k}`));
  }

  const configPath = (flags.get('config') ?? fromEnv.get('config') ?? fromCmdline.get('config')) as string | undefined;
  const fromFile = new Map<OptionName, string | number | boolean | string[]>();
  if (configPath) {
    let text: string;
    try {
      text = readFile(configPath);
    } catch (e) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const [k, v] of parseConfigFile(text, configPath)) {
      const n = byFileKey.get(k);
      if (!n || specs[n].noFile) throw new ConfigError(`config file ${configPath}: unknown option "${k}"`);
      fromFile.set(n, typeof v === 'string' ? parseValue(n, v, `config file ${configPath}`) : specs[n].type === 'list' && typeof v !== 'object' ? [String(v)] : v);
    }
  }

  for (const n of names) {
    const layers: Array<[Source, ReadonlyMap<OptionName, unknown>]> = [['flag', flags], ['env', fromEnv], ['kernel-cmdline', fromCmdline], ['file', fromFile]];
    const hit = layers.find(([, m]) => m.has(n));
    if (hit) {
      merged[n] = hit[1].get(n);
      sources[n] = hit[0];
    } else if (specs[n].default !== undefined) {
      merged[n] = specs[n].default;
      sources[n] = 'default';
    }
  }

  validate(merged);

  let agentToken: LoadedConfig['agentToken'];
  if (typeof merged.agent_token === 'string' && merged.agent_token) {
    const src = sources.agent_token as 'flag' | 'env' | 'kernel-cmdline' | 'file';
    agentToken = { value: merged.agent_token, source: src };
    if (src === 'flag') warnings.push('--agent-token on the command line is visible to every local user in /proc/PID/cmdline; prefer ipa-agent-token on the kernel command line, INBAND_AGENT_AGENT_TOKEN or --agent-token-file');
  }
  delete merged.agent_token;
  if (typeof merged.agent_token_file === 'string') {
    if (agentToken) warnings.push(`both an agent token (${agentToken.source}) and --agent-token-file are set; using the token from ${agentToken.source}`);
    else {
      let text: string;
      try {
        text = readFile(merged.agent_token_file);
      } catch (e) {
        throw new ConfigError(`cannot read --agent-token-file ${merged.agent_token_file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const value = text.split(/\r?\n/)[0]!.trim();
      if (!value) throw new ConfigError(`--agent-token-file ${merged.agent_token_file} is empty`);
      agentToken = { value, source: 'file' };
    }
  }
  // Ironic's tokens are >= 32 characters (IPA refuses shorter ones from lookup); a short one
  // configured by hand could be guessed, and it authorises setting the BMC's credentials.
  if (agentToken && agentToken.value.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError(`the agent token (${TOKEN_SOURCE_NAMES[agentToken.source]}) is ${agentToken.value.length} characters; at least ${MIN_TOKEN_LENGTH} are required`);
  }
  if (merged.listen_tls === true && (!merged.tls_cert_file || !merged.tls_key_file)) {
    throw new ConfigError('--listen-tls needs both --tls-cert-file and --tls-key-file');
  }
  if (merged.backend === 'vm-codec' && !merged.vm_codec) throw new ConfigError('--backend vm-codec needs --vm-codec HOST:PORT');

  return {
    config: Object.freeze(merged) as Config,
    ...(agentToken ? { agentToken } : {}),
    sources: Object.freeze(sources),
    positionals,
    warnings,
  };
}

/** The help text of every option: what it does, its default, and every source it can come from. */
export function optionsHelp(only?: readonly OptionName[]): string {
  const lines: string[] = [];
  for (const n of only ?? names) {
    const s = specs[n];
    const left = `  ${flagName(n)}${s.type === 'bool' ? ` | --no-${n.replace(/_/g, '-')}` : ` ${s.meta ?? 'VALUE'}`}`;
    lines.push(left);
    lines.push(`      ${s.help}`);
    const from = [
      `env ${envName(n)}`,
      ...(s.cmdline ? [`kernel ${s.cmdline}=`] : []),
      ...(s.noFile ? [] : [`file ${n}`]),
    ];
    const def = s.default !== undefined ? `default ${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}` : 'default: unset';
    lines.push(`      [${def}${s.choices ? `; one of ${s.choices.join('|')}` : ''}; also from: ${from.join(', ')}]`);
  }
  return lines.join('\n');
}

/**
 * One line per option (flag, value or choices, the help's first sentence), for
 * subcommand help that fits a screen; optionsHelp() has the whole story.
 */
export function optionsSummary(only: readonly OptionName[]): string {
  return only.map((n) => {
    const s = specs[n];
    const left = `  ${flagName(n)} ${s.type === 'bool' ? '' : s.choices ? s.choices.join('|') : (s.meta ?? 'VALUE')}`;
    return `${left.padEnd(Math.max(left.length + 2, 27))}${firstClause(s.help)}`;
  }).join('\n');
}

/** An option's help up to its first full stop, semicolon, colon or parenthesis: one line of a command's help. */
function firstClause(help: string): string {
  return help.split(/(?<=[.;:])\s|\s\(/)[0]!.replace(/[.;:]$/, '');
}

/** The options every BMC command (bmc, set-credentials, user, channel, mc) takes: how to reach the BMC, where the journal is, how to log. */
export const BACKEND_OPTIONS: readonly OptionName[] = ['backend', 'device', 'vm_codec', 'sim_profile', 'sim_state_file', 'state_dir', 'ipmi_timeout', 'ipmi_retries', 'log_level', 'log_format', 'config'];

/** The per-request timeout and retry budget CredentialService gets from --ipmi-timeout and --ipmi-retries. */
export function ipmiCallOptions(config: Config): { timeoutMs: number; retry: { attempts: number } } {
  return { timeoutMs: config.ipmi_timeout * 1000, retry: { attempts: config.ipmi_retries + 1 } };
}
