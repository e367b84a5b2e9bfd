/**
 * The `bmc` extension: bmc.get_info (sync) and bmc.set_credentials (async).
 * Params are snake_case like every IPA command; the password is wrapped in a
 * Secret (and registered with the log redactor) the moment it is parsed, and
 * is never part of a record: results are passed through {@link scrubResult}.
 *
 * `password_sealed` carries the password sealed to this agent's auto-TLS
 * certificate key (agent/tls/sealing-key.ts), so that what Ironic persists of
 * the step args (`driver_internal_info.clean_steps`, returned unmasked by its
 * API) holds no plain password. It is opened here, before anything reaches
 * the BMC; a value for another key, node or user is refused naming the field.
 */
import { Secret } from '../../../service/secret.js';
import { processSealingKey, SEALED_VALUE_SCHEMA, SealedValueError, type SealedValue, type SealingKey } from '../../tls/sealing-key.js';
import { ParamError, type CommandDefinition, type CommandRegistry } from '../registry.js';
import { PRIVILEGES, type CredentialsPort, type PrivilegeName, type SetCredentialsArgs } from '../ports.js';

/** The params of bmc.set_credentials, and the args of the set_bmc_credentials step. */
export interface SetCredentialsParams {
  username: string;
  password?: string;
  password_sealed?: SealedValue;
  generate?: boolean;
  privilege?: PrivilegeName;
  slot?: number;
  channels?: number[];
  enable_channel_access?: boolean;
  allow_fixed_slot?: boolean;
}

// IPMI v2.0 §22.28 Set User Name: 16 bytes; §22.30 Set User Password: 16 or 20 bytes.
// Slots: user IDs 1..63 (§22.27); channels: 4-bit numbers (§6.3).
export const SET_CREDENTIALS_SCHEMA = {
  type: 'object',
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 16 },
    password: { type: 'string', minLength: 1, maxLength: 20 },
    password_sealed: SEALED_VALUE_SCHEMA,
    generate: { type: 'boolean' },
    privilege: { type: 'string', enum: PRIVILEGES },
    slot: { type: 'integer', minimum: 1, maximum: 63 },
    channels: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 15 }, minItems: 1, maxItems: 16, uniqueItems: true },
    enable_channel_access: { type: 'boolean' },
    allow_fixed_slot: { type: 'boolean' },
  },
  required: ['username'],
  additionalProperties: false,
} as const;

/** Human descriptions of the args, served as the step's `argsinfo` (Ironic validates manual steps against it). */
export const SET_CREDENTIALS_ARGSINFO: Record<string, { description: string; required: boolean }> = {
  username: { description: 'BMC user name to create or update (1-16 bytes)', required: true },
  password: { description: 'New password (1-20 bytes; 16 on IPMI 1.5 BMCs). Give this, password_sealed or generate', required: false },
  password_sealed: { description: 'The new password sealed to this agent\'s TLS certificate key (ECDH-ES+A256GCM, bound to node, user and step), so Ironic\'s records hold no plain password', required: false },
  generate: { description: 'Generate a random password in the agent instead (it is never returned)', required: false },
  privilege: { description: 'administrator (default), operator or user', required: false },
  slot: { description: 'User ID to use (default: the user with this name, else a free slot)', required: false },
  channels: { description: 'LAN channel numbers to grant access on (default: every LAN channel)', required: false },
  enable_channel_access: { description: 'Also set the channel access mode and privilege limit where they block a LAN login (default false)', required: false },
  allow_fixed_slot: { description: 'Allow writing a slot whose name the BMC fixes', required: false },
};

export interface Redactor {
  register(value: string): void;
}

/** What opening a `password_sealed` needs: this agent's key, and the node it serves when known. */
export interface SealedContext {
  key: SealingKey | undefined;
  node?: string;
}

/** The step a sealed BMC password is for (the same for bmc.set_credentials). */
export const SEALED_PURPOSE = 'set_bmc_credentials';

/** Turns validated params into the engine's request; throws ParamError naming the field. */
export function toSetCredentialsArgs(p: SetCredentialsParams, redactor: Redactor | undefined, prefix = 'params', sealed?: SealedContext): SetCredentialsArgs {
  const given = [p.password !== undefined, p.password_sealed !== undefined, p.generate === true].filter(Boolean).length;
  if (given > 1) throw new ParamError(`${prefix}.${p.password_sealed !== undefined ? 'password_sealed' : 'password'}`, 'give either password, password_sealed or generate=true, not more than one');
  if (given === 0) throw new ParamError(`${prefix}.password`, 'required field missing (or give password_sealed, or set generate=true)');
  let password: Secret | undefined;
  if (p.password_sealed !== undefined) {
    const key = sealed?.key;
    if (!key) throw new ParamError(`${prefix}.password_sealed`, 'this agent has no sealing key (it serves without auto-TLS), so nothing can be sealed to it');
    try {
      password = key.open(p.password_sealed, { purpose: SEALED_PURPOSE, user: p.username, ...(sealed?.node !== undefined ? { node: sealed.node } : {}) });
    } catch (err) {
      if (err instanceof SealedValueError) throw new ParamError(`${prefix}.password_sealed`, err.message);
      throw err;
    }
    redactor?.register(password.reveal());
  } else if (p.password !== undefined) {
    redactor?.register(p.password);
    password = Secret.fromString(p.password);
  }
  return {
    username: p.username,
    ...(password !== undefined ? { password } : { generate: true }),
    ...(p.privilege !== undefined ? { privilege: p.privilege } : {}),
    ...(p.slot !== undefined ? { slot: p.slot } : {}),
    ...(p.channels !== undefined ? { channels: [...p.channels] } : {}),
    ...(p.enable_channel_access !== undefined ? { enableChannelAccess: p.enable_channel_access } : {}),
    ...(p.allow_fixed_slot !== undefined ? { allowFixedSlot: p.allow_fixed_slot } : {}),
  };
}

// Keys whose string value would be a secret: `password`, `generated_password`, `agent_token`, `secret`…
const SECRET_KEY = /^(.*_)?(password|passwd|secret|token)$/;

/** `userId` → `user_id`: the wire speaks snake_case, like every IPA record. */
const snake = (k: string): string => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/**
 * A deep, JSON-safe copy of an engine result without anything secret, keys in
 * snake_case: Secrets, and strings under keys such as `password`,
 * `generated_password`, `secret`, `agent_token`, are dropped
 * (`password_generated: true`, `password_test: "passed"` stay).
 */
export function scrubResult(value: unknown, depth = 0): unknown {
  if (depth > 20) return null;
  if (value === null || value === undefined) return null;
  if (value instanceof Secret) return undefined;
  if (Array.isArray(value)) return value.map((v) => scrubResult(v, depth + 1)).filter((v) => v !== undefined);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const key = snake(k);
      if (SECRET_KEY.test(key) && typeof v !== 'boolean' && typeof v !== 'number') continue;
      const s = scrubResult(v, depth + 1);
      if (s !== undefined) out[key] = s;
    }
    return out;
  }
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  return value;
}

/** Runs a credential change and returns its secret-free result (the password is disposed afterwards). */
export async function runSetCredentials(credentials: CredentialsPort, args: SetCredentialsArgs): Promise<Record<string, unknown>> {
  try {
    const result = scrubResult(await credentials.setCredentials(args));
    const obj = result && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>) : { result };
    return { ...obj, password_generated: args.generate === true };
  } finally {
    args.password?.dispose();
  }
}

export interface BmcCommandDeps {
  credentials: CredentialsPort;
  redactor?: Redactor;
  /** The key password_sealed is opened with (default: the process's auto-TLS key, if any). */
  sealingKey?: () => SealingKey | undefined;
}

export function registerBmcCommands(registry: CommandRegistry, deps: BmcCommandDeps): void {
  const sealingKey = deps.sealingKey ?? processSealingKey;
  const getInfo: CommandDefinition<Record<string, never>, null> = {
    mode: 'sync',
    schema: { type: 'object', additionalProperties: false },
    prepare: () => null,
    run: async () => scrubResult(await deps.credentials.getInfo()),
  };
  const setCredentials: CommandDefinition<SetCredentialsParams, SetCredentialsArgs> = {
    mode: 'async',
    schema: SET_CREDENTIALS_SCHEMA,
    prepare: (p) => toSetCredentialsArgs(p, deps.redactor, 'params', { key: sealingKey() }),
    run: (args) => runSetCredentials(deps.credentials, args),
  };
  registry.register('bmc.get_info', getInfo).register('bmc.set_credentials', setCredentials);
}
