/**
 * The `bmc` extension: bmc.get_info (sync) and bmc.set_credentials (async).
 * Params are snake_case like every IPA command; the password is wrapped in a
 * Secret (and registered with the log redactor) the moment it is parsed, and
 * is never part of a record: results are passed through {@link scrubResult}.
 */
import { Secret } from '../../../service/secret.js';
import { ParamError, type CommandDefinition, type CommandRegistry } from '../registry.js';
import { PRIVILEGES, type CredentialsPort, type PrivilegeName, type SetCredentialsArgs } from '../ports.js';

/** The params of bmc.set_credentials, and the args of the set_bmc_credentials step. */
export interface SetCredentialsParams {
  username: string;
  password?: string;
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
  password: { description: 'New password (1-20 bytes; 16 on IPMI 1.5 BMCs). Give this or generate', required: false },
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

/** Turns validated params into the engine's request; throws ParamError naming the field. */
export function toSetCredentialsArgs(p: SetCredentialsParams, redactor: Redactor | undefined, prefix = 'params'): SetCredentialsArgs {
  if (p.password !== undefined && p.generate === true) throw new ParamError(`${prefix}.password`, 'give either password or generate=true, not both');
  if (p.password === undefined && p.generate !== true) throw new ParamError(`${prefix}.password`, 'required field missing (or set generate=true)');
  if (p.password !== undefined) redactor?.register(p.password);
  return {
    username: p.username,
    ...(p.password !== undefined ? { password: Secret.fromString(p.password) } : { generate: true }),
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

export function registerBmcCommands(registry: CommandRegistry, deps: { credentials: CredentialsPort; redactor?: Redactor }): void {
  const getInfo: CommandDefinition<Record<string, never>, null> = {
    mode: 'sync',
    schema: { type: 'object', additionalProperties: false },
    prepare: () => null,
    run: async () => scrubResult(await deps.credentials.getInfo()),
  };
  const setCredentials: CommandDefinition<SetCredentialsParams, SetCredentialsArgs> = {
    mode: 'async',
    schema: SET_CREDENTIALS_SCHEMA,
    prepare: (p) => toSetCredentialsArgs(p, deps.redactor),
    run: (args) => runSetCredentials(deps.credentials, args),
  };
  registry.register('bmc.get_info', getInfo).register('bmc.set_credentials', setCredentials);
}
