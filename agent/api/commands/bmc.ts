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
import { SEALED_PURPOSE } from '../../../service/sealed-value.js';
import { checkWireParams, credentialArgsinfo, credentialParamsSchema, privilegeName } from '../../../service/credential-contract.js';
import { SEALED_VALUE_SCHEMA, SealedValueError, type SealedValue, type SealingKey } from '../../tls/sealing-key.js';
import { ParamError, type CommandDefinition, type CommandRegistry } from '../registry.js';
import type { CredentialsPort, PrivilegeName, SetCredentialsArgs } from '../ports.js';

/** The params of bmc.set_credentials, and the args of the set_bmc_credentials step (service/credential-contract.ts). */
export interface SetCredentialsParams {
  username: string;
  password?: string;
  password_sealed?: SealedValue;
  generate?: boolean;
  privilege?: PrivilegeName | 2 | 3 | 4;
  slot?: number;
  channels?: number[];
  enable_channel_access?: boolean;
  allow_fixed_slot?: boolean;
  allow_lockout?: boolean;
}

/**
 * Derived from the credential contract, never written out here, so the HTTP
 * door, the step's args, the CLI and the conductor refuse the same inputs;
 * the agent adds only the sealed value's shape, which it owns.
 */
export const SET_CREDENTIALS_SCHEMA = credentialParamsSchema({ password_sealed: SEALED_VALUE_SCHEMA });

/** The contract's reason for refusing params, `<prefix>.<field>: must be …` (never the value), or null. */
export function explainParams(p: unknown, prefix: string): string | null {
  const v = checkWireParams(p);
  return v ? `${prefix}.${v.field}: ${v.message}` : null;
}

/** The args' descriptions, served as the step's `argsinfo` (Ironic refuses manual-step args it does not list). */
export const SET_CREDENTIALS_ARGSINFO: Record<string, { description: string; required: boolean }> = credentialArgsinfo();

export interface Redactor {
  register(value: string): void;
}

/** What opening a `password_sealed` needs: this agent's key, and the node it serves when known. */
export interface SealedContext {
  key: SealingKey | undefined;
  node?: string;
}

/** The step a sealed BMC password is for (the same for bmc.set_credentials): the sealed-value format's. */
export { SEALED_PURPOSE };

/** Turns validated params into the engine's request; throws ParamError naming the field. */
export function toSetCredentialsArgs(p: SetCredentialsParams, redactor: Redactor | undefined, prefix = 'params', sealed?: SealedContext): SetCredentialsArgs {
  // The schema already held; this adds the contract's cross-field rule (one password source).
  const v = checkWireParams(p);
  if (v) throw new ParamError(`${prefix}.${v.field}`, v.message);
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
    ...(p.privilege !== undefined ? { privilege: privilegeName(p.privilege)! } : {}),
    ...(p.slot !== undefined ? { slot: p.slot } : {}),
    ...(p.channels !== undefined ? { channels: [...p.channels] } : {}),
    ...(p.enable_channel_access !== undefined ? { enableChannelAccess: p.enable_channel_access } : {}),
    ...(p.allow_fixed_slot !== undefined ? { allowFixedSlot: p.allow_fixed_slot } : {}),
    ...(p.allow_lockout !== undefined ? { allowLockout: p.allow_lockout } : {}),
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
  /** The key password_sealed is opened with: the auto-TLS certificate's (agent/serve.ts); absent, a sealed password is refused. */
  sealingKey?: SealingKey;
}

export function registerBmcCommands(registry: CommandRegistry, deps: BmcCommandDeps): void {
  const getInfo: CommandDefinition<Record<string, never>, null> = {
    mode: 'sync',
    schema: { type: 'object', additionalProperties: false },
    prepare: () => null,
    run: async () => scrubResult(await deps.credentials.getInfo()),
  };
  const setCredentials: CommandDefinition<SetCredentialsParams, SetCredentialsArgs> = {
    mode: 'async',
    schema: SET_CREDENTIALS_SCHEMA,
    explain: (p) => explainParams(p, 'params'),
    prepare: (p) => toSetCredentialsArgs(p, deps.redactor, 'params', { key: deps.sealingKey }),
    run: (args) => runSetCredentials(deps.credentials, args),
  };
  registry.register('bmc.get_info', getInfo).register('bmc.set_credentials', setCredentials);
}
