/**
 * The `bmc` extension: bmc.get_info (sync) and bmc.set_credentials (async).
 * Params are snake_case like every IPA command; the password is wrapped in a
 * Secret (and registered with the log redactor) the moment it is parsed, and
 * is never part of a record: a result carries only the keys its wire type
 * declares (agent/api/wire.ts), and none of them holds a password.
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
import { bmcInfoWire, setCredentialsWire, type BmcInfoWire, type SetCredentialsResultWire } from '../wire.js';

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

/** True when `p` holds by the credential contract: known fields, each field's rule, one password source. */
export function isSetCredentialsParams(p: unknown): p is SetCredentialsParams {
  return checkWireParams(p) === null;
}

/**
 * Turns params into the engine's request; throws ParamError naming the field.
 * The contract is checked here whatever the caller checked before (the
 * HTTP schema, the step's args, what a discovery answer carried): it adds
 * the cross-field rule (one password source) a schema cannot say.
 */
export function toSetCredentialsArgs(params: unknown, redactor: Redactor | undefined, prefix = 'params', sealed?: SealedContext): SetCredentialsArgs {
  if (!isSetCredentialsParams(params)) {
    const v = checkWireParams(params)!;
    throw new ParamError(`${prefix}.${v.field}`, v.message);
  }
  const p = params;
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

/**
 * Runs a credential change and answers its wire result ({@link setCredentialsWire}:
 * declared keys only, so the password, given or generated, has none); both
 * passwords are disposed afterwards.
 */
export async function runSetCredentials(credentials: CredentialsPort, args: SetCredentialsArgs): Promise<SetCredentialsResultWire> {
  try {
    const result = await credentials.setCredentials(args);
    result.generatedPassword?.dispose();
    return setCredentialsWire(result, args.generate === true);
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
  const getInfo: CommandDefinition<Record<string, never>, null, BmcInfoWire> = {
    mode: 'sync',
    schema: { type: 'object', additionalProperties: false },
    prepare: () => null,
    run: async () => bmcInfoWire(await deps.credentials.getInfo()),
  };
  const setCredentials: CommandDefinition<SetCredentialsParams, SetCredentialsArgs, SetCredentialsResultWire> = {
    mode: 'async',
    schema: SET_CREDENTIALS_SCHEMA,
    explain: (p) => explainParams(p, 'params'),
    prepare: (p) => toSetCredentialsArgs(p, deps.redactor, 'params', { key: deps.sealingKey }),
    run: (args: SetCredentialsArgs) => runSetCredentials(deps.credentials, args),
  };
  registry.register('bmc.get_info', getInfo).register('bmc.set_credentials', setCredentials);
}
