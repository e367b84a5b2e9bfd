/**
 * The credential contract: what a valid "set this BMC user" request is, declared
 * once as data. Everything that takes such a request derives its checks from
 * {@link CREDENTIAL_CONTRACT}, so the doors cannot disagree:
 *
 * - the engine (service/validate.ts → {@link checkEngineRequest});
 * - the agent's HTTP schema for `bmc.set_credentials` and the step args
 *   ({@link credentialParamsSchema}), and the step's `argsinfo`
 *   ({@link credentialArgsinfo});
 * - the CLI's `set-credentials` flags ({@link flagValue}, {@link checkWireParams});
 * - the conductor's step args and user names (`conductor rotate`, `serve`).
 *
 * The contract is plain JSON-able data (JSON-schema fragments plus names), so
 * another implementation (a Python Ironic driver) can load the same facts from
 * `JSON.stringify(CREDENTIAL_CONTRACT)` rather than re-typing them.
 *
 * What needs the BMC's state cannot be decided here and is refused by the
 * engine before its first write: a 17–20 byte password on an IPMI 1.5 BMC
 * (§22.30), a slot beyond the BMC's user count (§22.27 byte 1), a vendor
 * fixed-name slot, a channel that is not a LAN channel, and any change that
 * would leave a LAN channel without the enabled administrator it had (see
 * docs/credential-contract.md, "Never lock the operator out").
 */
import { Privilege } from '../ipmi-kcs/spec.js';

/** A JSON-schema fragment, restricted to the keywords {@link checkValue} interprets. */
export interface SchemaFragment {
  type?: 'string' | 'integer' | 'boolean' | 'array' | 'object';
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: ReadonlyArray<string | number>;
  items?: SchemaFragment;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
}

export interface ContractField {
  /** The name on the wire (HTTP params, step args, Ironic): snake_case. */
  readonly wire: string;
  /** The engine's name (service/types.ts SetCredentialsRequest). */
  readonly engine: string;
  /** The CLI flag that carries it, or null when the CLI has none. */
  readonly flag: string | null;
  /** How the CLI flag carries it: a value, repeated values, a switch, or the password read from stdin. */
  readonly flagKind: 'value' | 'multi' | 'bool' | 'stdin' | null;
  readonly schema: SchemaFragment;
  readonly required: boolean;
  /** What to give, for a human (served as the step's argsinfo). */
  readonly description: string;
  /** What the value must be, completing "must be …" in an error. */
  readonly rule: string;
  /** Why the limit is what it is (spec section or vendor fact). */
  readonly why: string;
}

/**
 * The privilege levels a BMC stores (IPMI v2.0 §6.8, Table 22-28; 0 and 6-14
 * are reserved), declared once: the contract's names, ipmitool's names
 * (`ipmi_privlvl_vals`, as `user list` prints them), the spellings operators
 * type, and whether a credential request may grant the level. Callback (1)
 * cannot manage over LAN, OEM (5) is vendor-defined (ipmi_sim refuses it) and
 * no access (0xF) is no login, so a request grants only user, operator or
 * administrator; the operator CLI (`user priv`) may set any stored level.
 */
export const PRIVILEGE_LEVELS = Object.freeze([
  { name: 'callback', level: Privilege.CALLBACK, ipmitool: 'CALLBACK', aliases: [], grantable: false },
  { name: 'user', level: Privilege.USER, ipmitool: 'USER', aliases: [], grantable: true },
  { name: 'operator', level: Privilege.OPERATOR, ipmitool: 'OPERATOR', aliases: [], grantable: true },
  { name: 'administrator', level: Privilege.ADMINISTRATOR, ipmitool: 'ADMINISTRATOR', aliases: ['admin'], grantable: true },
  { name: 'oem', level: Privilege.OEM, ipmitool: 'OEM', aliases: [], grantable: false },
  { name: 'no-access', level: Privilege.NO_ACCESS, ipmitool: 'NO ACCESS', aliases: ['no_access', 'no access', 'noaccess'], grantable: false },
] as const);

type GrantableLevel = Extract<(typeof PRIVILEGE_LEVELS)[number], { grantable: true }>;
export type ContractPrivilegeName = GrantableLevel['name'];

/** The levels a credential request may grant, by the contract's name. */
export const PRIVILEGE_BY_NAME = Object.freeze(Object.fromEntries(
  PRIVILEGE_LEVELS.filter((l) => l.grantable).map((l) => [l.name, l.level]),
)) as { readonly [L in GrantableLevel as L['name']]: L['level'] };

/** What an operator-facing error lists as valid levels. */
export const PRIVILEGE_CHOICES = PRIVILEGE_LEVELS.map((l) => `${l.name} (${l.level})`).join(', ');

/** The BMC user a rotation alternates with: `<U>` and `<U>` + this suffix (conductor rotate, the Ironic passthru). */
export const SECOND_USER_SUFFIX = '_b';

/** The grantable levels, highest first, as the contract's privilege field lists them. */
const GRANTABLE = PRIVILEGE_LEVELS.filter((l) => l.grantable).sort((a, b) => b.level - a.level);

const PRINTABLE_ASCII = '\\x20-\\x7E';

export const CREDENTIAL_CONTRACT = Object.freeze({
  version: 1,
  /** §22.30: the password field is 16 bytes on IPMI 1.5; IPMI 2.0 adds the 20-byte form. */
  passwordBytesByIpmiVersion: Object.freeze({ '1.5': 16, '2.0': 20 }),
  /** Exactly one of these gives the password (generate only when true). */
  onePasswordSourceOf: Object.freeze(['password', 'password_sealed', 'generate'] as const),
  fields: Object.freeze([
    {
      wire: 'username', engine: 'username', flag: '--username', flagKind: 'value', required: true,
      schema: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}$' },
      description: 'BMC user name to create or update: 1-16 ASCII letters, digits, _ . - (not starting with . or -)',
      rule: '1-16 ASCII letters, digits, "_", "." or "-", not starting with "." or "-"',
      why: 'Set User Name (IPMI v2.0 §22.28) holds 16 bytes of ASCII, NUL-padded, so a NUL or a non-ASCII byte cannot round-trip; '
        + 'ipmitool, iDRAC, iLO, Supermicro and ipmi_sim take dots and dashes; a leading "-" reads as an option to ipmitool',
    },
    {
      wire: 'password', engine: 'password', flag: '--password-stdin', flagKind: 'stdin', required: false,
      schema: { type: 'string', pattern: `^[${PRINTABLE_ASCII}]{1,20}$` },
      description: 'New password: 1-20 bytes of printable ASCII; more than 16 needs an IPMI 2.0 BMC. Give this, password_sealed or generate',
      rule: '1-20 bytes of printable ASCII (0x20-0x7E)',
      why: 'Set User Password (§22.30) stores 16 bytes (IPMI 1.5) or 20 (IPMI 2.0, size bit set), NUL-padded: a NUL would cut the password short, '
        + 'and BMCs differ on how they store and compare bytes above 0x7E. 17-20 bytes are refused on an IPMI 1.5 BMC before anything is written',
    },
    {
      wire: 'password_sealed', engine: 'password', flag: null, flagKind: null, required: false,
      schema: { type: 'object' },
      description: 'The new password sealed to this agent\'s TLS certificate key (ECDH-ES+A256GCM, bound to node, user and step), so Ironic\'s records hold no plain password',
      rule: 'a sealed value for this agent, node, user and step',
      why: 'Ironic keeps step args unmasked (driver_internal_info.clean_steps); once opened, the password obeys the password rule',
    },
    {
      wire: 'generate', engine: 'generate', flag: '--generate', flagKind: 'bool', required: false,
      schema: { type: 'boolean' },
      description: 'Generate a random password in the agent instead (it is never returned)',
      rule: 'true or false',
      why: 'a password the caller never sees cannot leak from the caller',
    },
    {
      wire: 'privilege', engine: 'privilege', flag: '--privilege', flagKind: 'value', required: false,
      schema: { enum: [...GRANTABLE.map((l) => l.name), ...GRANTABLE.map((l) => l.level)] },
      description: 'administrator (default), operator or user, or the IPMI level 4, 3 or 2',
      rule: 'administrator, operator or user (or 4, 3, 2)',
      why: 'IPMI v2.0 §6.8: 2 user, 3 operator, 4 administrator; 1 callback cannot manage over LAN, 5 OEM is vendor-defined (ipmi_sim refuses it), 0xF is no access',
    },
    {
      wire: 'slot', engine: 'slot', flag: '--slot', flagKind: 'value', required: false,
      schema: { type: 'integer', minimum: 2, maximum: 63 },
      description: 'User ID to use, 2-63 (default: the user with this name, else the first free slot above the vendor fixed-name ones)',
      rule: 'a user ID 2-63',
      why: 'user IDs are 6 bits, 1-63 (§22.26); user 1 is the anonymous (null) user whose name cannot be set (§6.9.1, §22.28); '
        + 'the BMC\'s own limit (Get User Access byte 1) and its fixed-name slots are checked before any write',
    },
    {
      wire: 'channels', engine: 'channels', flag: '--channel', flagKind: 'multi', required: false,
      schema: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 11 }, minItems: 1, maxItems: 11, uniqueItems: true },
      description: 'LAN channel numbers 1-11 to grant access on (default: every LAN channel)',
      rule: 'a non-empty list of distinct channel numbers 1-11',
      why: 'channel numbers (§6.3): 0 is the primary IPMB, 0xC-0xD are reserved, 0xE is "this channel", 0xF the system interface; a LAN channel is one of 1-0xB. '
        + 'Whether each is a LAN channel on this BMC is checked before any write',
    },
    {
      wire: 'enable_channel_access', engine: 'enableChannelAccess', flag: '--enable-channel-access', flagKind: 'bool', required: false,
      schema: { type: 'boolean' },
      description: 'Also set the channel access mode and privilege limit where they block a LAN login (default false)',
      rule: 'true or false',
      why: 'Set Channel Access (§22.22) changes BMC policy for every user, so it is opt-in',
    },
    {
      wire: 'allow_fixed_slot', engine: 'allowFixedSlot', flag: '--allow-fixed-slot', flagKind: 'bool', required: false,
      schema: { type: 'boolean' },
      description: 'Allow writing a slot whose name the BMC fixes (Supermicro ADMIN, Dell root, Lenovo USERID), if the name matches',
      rule: 'true or false',
      why: 'fixed-name slots (§22.27 byte 3) are vendor accounts; they are never renamed and only touched when asked',
    },
    {
      wire: 'allow_lockout', engine: 'allowLockout', flag: '--allow-lockout', flagKind: 'bool', required: false,
      schema: { type: 'boolean' },
      description: 'Allow a change that leaves a LAN channel without the enabled administrator it had (demote, rename or reuse of its slot). Default false',
      rule: 'true or false',
      why: 'without an enabled administrator on a LAN channel nobody can repair the BMC over the network; only an explicit request may do that',
    },
  ] satisfies ContractField[]),
});

/**
 * Examples every implementation of the contract must answer the same way
 * (true: accepted): the TypeScript engine (test/ironic-driver/shared-contract.test.ts)
 * and the Python Ironic driver (inband_ironic/tests/test_contract.py) run them.
 */
export const CONTRACT_EXAMPLES = Object.freeze({
  username: [
    ['ironic', true], ['ironic_b', true], ['bmc-admin', true], ['svc.ironic', true], ['ADMIN2', true],
    ['a', true], ['abcdefghijklmnop', true],
    ['', false], ['abcdefghijklmnopq', false], ['-admin', false], ['.hidden', false], ['été', false],
    ['bmc admin', false], ['nul\u0000', false], ['semi;colon', false], ['quote\'', false], ['ironic\n', false],
  ] as ReadonlyArray<readonly [string, boolean]>,
  /** [bytes, IPMI version, accepted] */
  passwordBytes: [
    [1, '2.0', true], [16, '1.5', true], [17, '1.5', false], [20, '2.0', true], [21, '2.0', false], [0, '2.0', false],
  ] as ReadonlyArray<readonly [number, '1.5' | '2.0', boolean]>,
  passwordText: [
    ['Abc12345!_,?:xyz', true], ['with space ok', true], ['tab\there', false], ['nul\u0000', false], ['\u00e9\u00e9', false],
    ['trailing\n', false],
  ] as ReadonlyArray<readonly [string, boolean]>,
});

export type WireField = (typeof CREDENTIAL_CONTRACT.fields)[number]['wire'];

const FIELDS: readonly ContractField[] = CREDENTIAL_CONTRACT.fields;

export function contractField(wire: string): ContractField {
  const f = FIELDS.find((x) => x.wire === wire);
  if (!f) throw new Error(`no contract field ${wire}`);
  return f;
}

/** The first thing the contract refuses: which field (wire name), its CLI flag, and why. Never holds the value. */
export interface ContractViolation {
  field: string;
  /** The engine's name of the field. */
  engineField: string;
  flag: string | null;
  message: string;
}

const violation = (f: ContractField | { wire: string; engine: string; flag: string | null }, message: string): ContractViolation =>
  ({ field: f.wire, engineField: f.engine, flag: f.flag, message });

/** Secret-free facts about a string that broke its pattern: its length in bytes and the kinds of bytes it holds. */
function describeString(s: string): string {
  const bytes = Buffer.byteLength(s, 'utf8');
  const facts = [`got ${bytes} byte${bytes === 1 ? '' : 's'} in UTF-8`];
  const codes = [...s].map((c) => c.codePointAt(0)!);
  if (codes.includes(0)) facts.push('a NUL');
  if (codes.some((c) => (c > 0 && c < 0x20) || c === 0x7f)) facts.push('control characters');
  if (codes.some((c) => c > 0x7f)) facts.push('non-ASCII characters');
  return facts.join(', ');
}

/**
 * Checks `value` against a schema fragment; returns the problem or null.
 * Interprets exactly the keywords of {@link SchemaFragment}, the way ajv does
 * (the agreement is tested: test/service/credential-contract.test.ts).
 */
export function checkValue(schema: SchemaFragment, value: unknown, rule: string): string | null {
  const bad = (fact?: string): string => `must be ${rule}${fact ? ` (${fact})` : ''}`;
  if (schema.enum && !schema.enum.some((e) => e === value)) return bad();
  switch (schema.type) {
    case undefined:
      return null;
    case 'string': {
      if (typeof value !== 'string') return bad(`got ${kindOf(value)}`);
      const n = [...value].length;
      if ((schema.minLength !== undefined && n < schema.minLength) || (schema.maxLength !== undefined && n > schema.maxLength)) return bad(describeString(value));
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) return bad(describeString(value));
      return null;
    }
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return bad(`got ${typeof value === 'number' ? 'a non-integer number' : kindOf(value)}`);
      if ((schema.minimum !== undefined && value < schema.minimum) || (schema.maximum !== undefined && value > schema.maximum)) return bad(`got ${value}`);
      return null;
    case 'boolean':
      return typeof value === 'boolean' ? null : bad(`got ${kindOf(value)}`);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value) ? null : bad(`got ${kindOf(value)}`);
    case 'array': {
      if (!Array.isArray(value)) return bad(`got ${kindOf(value)}`);
      if (schema.minItems !== undefined && value.length < schema.minItems) return bad(`got ${value.length} item${value.length === 1 ? '' : 's'}`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return bad(`got ${value.length} items`);
      if (schema.items) {
        for (let i = 0; i < value.length; i++) {
          if (checkValue(schema.items, value[i], rule) !== null) return bad(`item ${i} is ${typeof value[i] === 'number' ? value[i] : kindOf(value[i])}`);
        }
      }
      if (schema.uniqueItems && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) return bad('an item is repeated');
      return null;
    }
  }
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/**
 * Checks a request in its wire form (HTTP params, step args, CLI flags turned
 * into values): unknown fields, every field's rule, one password source.
 * Returns the first violation, or null. The password is checked as text;
 * the engine re-checks its bytes ({@link checkPasswordBytes}).
 */
export function checkWireParams(params: unknown): ContractViolation | null {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return { field: 'params', engineField: 'request', flag: null, message: 'must be an object' };
  }
  const p = params as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!FIELDS.some((f) => f.wire === key)) return { field: key, engineField: key, flag: null, message: 'unknown field' };
  }
  for (const f of FIELDS) {
    if (p[f.wire] === undefined) {
      if (f.required) return violation(f, 'required field missing');
      continue;
    }
    const problem = checkValue(f.schema, p[f.wire], f.rule);
    if (problem) return violation(f, problem);
  }
  return checkPasswordSources(p);
}

function checkPasswordSources(p: Record<string, unknown>): ContractViolation | null {
  const given = CREDENTIAL_CONTRACT.onePasswordSourceOf.filter((k) => (k === 'generate' ? p[k] === true : p[k] !== undefined));
  if (given.length === 1) return null;
  const f = contractField(given.includes('password_sealed') ? 'password_sealed' : 'password');
  return violation(f, given.length === 0
    ? 'required field missing (give password, password_sealed, or generate=true)'
    : 'give either password, password_sealed or generate=true, not more than one');
}

/** The password rule on bytes (a Secret's), as {@link checkValue} applies it to text. */
export function checkPasswordBytes(bytes: Uint8Array): string | null {
  const rule = contractField('password').rule;
  const max = CREDENTIAL_CONTRACT.passwordBytesByIpmiVersion['2.0'];
  if (bytes.length < 1 || bytes.length > max) return `must be ${rule} (got ${bytes.length} byte${bytes.length === 1 ? '' : 's'})`;
  if (bytes.some((b) => b === 0)) return `must be ${rule} (got a NUL)`;
  if (bytes.some((b) => b < 0x20 || b > 0x7e)) return `must be ${rule} (got ${bytes.some((b) => b > 0x7f) ? 'non-ASCII' : 'control'} bytes)`;
  return null;
}

/** The privilege a request names (by name or §6.8 number) as its name; undefined for anything the contract refuses. */
export function privilegeName(v: unknown): ContractPrivilegeName | undefined {
  for (const [name, level] of Object.entries(PRIVILEGE_BY_NAME)) if (v === name || v === level) return name as ContractPrivilegeName;
  return undefined;
}

/**
 * The stored level an operator's text names (the operator CLI's `user priv`):
 * a name or alias in any case, or the number in decimal or hex —
 * `administrator`, `ADMINISTRATOR`, `admin`, `4`, `0x4` are the same level.
 * Undefined when it names none (the caller reports {@link PRIVILEGE_CHOICES}).
 */
export function parsePrivilege(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  const named = PRIVILEGE_LEVELS.find((l) => l.name === t || (l.aliases as readonly string[]).includes(t));
  if (named) return named.level;
  const n = /^0x[0-9a-f]{1,2}$/.test(t) ? parseInt(t, 16) : /^\d{1,2}$/.test(t) ? Number(t) : NaN;
  return PRIVILEGE_LEVELS.find((l) => l.level === n)?.level;
}

/** ipmitool's name of a level, as `user list` prints it; a level the spec reserves is `Unknown (0xNN)`. */
export function ipmitoolPrivilegeName(level: number): string {
  return PRIVILEGE_LEVELS.find((l) => l.level === level)?.ipmitool
    ?? `Unknown (0x${level.toString(16).toUpperCase().padStart(2, '0')})`;
}

/** The engine's request, checked field by field with the wire rules (password as a Secret-like `{ copyBytes() }`). */
export function checkEngineRequest(req: Record<string, unknown>): ContractViolation | null {
  if (req === null || typeof req !== 'object') return { field: 'request', engineField: 'request', flag: null, message: 'must be an object' };
  const byEngine = new Map<string, ContractField>();
  for (const f of FIELDS) if (f.wire !== 'password_sealed') byEngine.set(f.engine, f);
  for (const key of Object.keys(req)) {
    if (req[key] !== undefined && !byEngine.has(key)) return { field: key, engineField: key, flag: null, message: 'unknown field' };
  }
  for (const f of byEngine.values()) {
    const v = req[f.engine];
    if (v === undefined) {
      if (f.required) return violation(f, 'required field missing');
      continue;
    }
    if (f.wire === 'password') continue;
    const problem = checkValue(f.schema, v, f.rule);
    if (problem) return violation(f, problem);
  }
  const sources = (req.password !== undefined ? 1 : 0) + (req.generate === true ? 1 : 0);
  if (sources !== 1) return violation(contractField('password'), sources ? 'give either password or generate, not both' : 'required field missing (give password, or generate=true)');
  return null;
}

/**
 * The JSON schema of the wire params (`bmc.set_credentials` params, the step's
 * args). `overrides` replaces a field's fragment by a stricter one (the agent
 * gives the sealed-value shape, which it owns).
 */
export function credentialParamsSchema(overrides: Partial<Record<WireField, object>> = {}): {
  type: 'object'; properties: Record<string, object>; required: string[]; additionalProperties: false;
} {
  const properties: Record<string, object> = {};
  for (const f of FIELDS) properties[f.wire] = (overrides as Record<string, object | undefined>)[f.wire] ?? structuredClone(f.schema);
  return { type: 'object', properties, required: FIELDS.filter((f) => f.required).map((f) => f.wire), additionalProperties: false };
}

/** The step's `argsinfo` (Ironic refuses manual-step args it does not list). */
export function credentialArgsinfo(): Record<string, { description: string; required: boolean }> {
  return Object.fromEntries(FIELDS.map((f) => [f.wire, { description: f.description, required: f.required }]));
}

/** The contract field a CLI flag carries. */
export function fieldForFlag(flag: string): ContractField | undefined {
  return FIELDS.find((f) => f.flag === flag);
}

/**
 * A CLI flag's text as the wire value: integers for integer fields, numbers
 * for a numeric privilege. Text that is no number stays text, so the check
 * names the flag with the field's rule.
 */
export function flagValue(field: ContractField, text: string): unknown {
  const s = field.schema;
  const numeric = (t: string): unknown => (/^\d{1,4}$/.test(t) ? Number(t) : t);
  if (s.type === 'integer') return numeric(text);
  if (s.type === 'array' && s.items?.type === 'integer') return numeric(text);
  if (s.enum && /^\d{1,4}$/.test(text)) return Number(text);
  return text;
}
